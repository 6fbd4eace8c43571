import { describe, expect, it, vi } from 'vitest';
import { messageBatchesOf } from '../support/message-batches.ts';
import { pipelineHarness } from '../support/pipeline-harness.ts';

const ALICE = 'arn:aws:iam::123456789012:user/alice';
const BOB = 'arn:aws:iam::123456789012:user/bob';
const params = { model: 'claude-haiku-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] };

/** Alice and Bob each create `each` batches, a second apart and in turn; the API as each sees it. */
async function batchesOfTwoCallers(each: number) {
  const clock = { now: Date.parse('2026-12-07T08:00:00Z') };
  const pipeline = pipelineHarness({ clock });
  const [alice, bob] = [messageBatchesOf(pipeline, ALICE), messageBatchesOf(pipeline, BOB)];
  const aliceIds: string[] = [];
  for (let index = 0; index < each; index += 1) {
    for (const api of [alice, bob]) {
      clock.now += 1_000;
      const body = { requests: [{ custom_id: `r${index}`, params }] };
      const batch = await api.create(body, JSON.stringify(body).length);
      if (api === alice) aliceIds.push(batch.id);
    }
  }
  return { pipeline, alice, newestFirst: aliceIds.reverse() };
}

describe('listing message batches', () => {
  it("pages through the caller's batches newest first, reading only the records a page needs", async () => {
    // Prepare
    const { pipeline, alice, newestFirst } = await batchesOfTwoCallers(15);
    const reads = vi.spyOn(pipeline.store, 'read');

    // Act
    const first = await alice.list({ limit: 5 });
    const readsForFirstPage = reads.mock.calls.length;
    const second = await alice.list({ limit: 5, afterId: first.last_id ?? '' });
    const back = await alice.list({ limit: 5, beforeId: second.first_id ?? '' });
    const last = await alice.list({ limit: 5, afterId: newestFirst[9] ?? '' });

    // Assess
    expect(first.data.map((batch) => batch.id)).toEqual(newestFirst.slice(0, 5));
    expect(second.data.map((batch) => batch.id)).toEqual(newestFirst.slice(5, 10));
    expect(back.data.map((batch) => batch.id)).toEqual(newestFirst.slice(0, 5));
    expect([first.has_more, second.has_more, back.has_more, last.has_more]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(last.data.map((batch) => batch.id)).toEqual(newestFirst.slice(10));
    // Six of Alice's among Bob's, found in the newest 16 records, not all 30.
    expect(readsForFirstPage).toBeLessThanOrEqual(16);
  });
});
