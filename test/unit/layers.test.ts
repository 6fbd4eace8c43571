import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');

/** The repository's TypeScript files under `folder`, relative to the root. */
function sourcesIn(folder: string): string[] {
  return readdirSync(path.join(root, folder), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => path.join(folder, file));
}

/** What a file imports from the repository, as paths relative to the root. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(root, file), 'utf8');
  return [...text.matchAll(/from '(\.[^']+)'/g)].map((match) =>
    path.relative(root, path.resolve(path.dirname(path.join(root, file)), match[1] ?? '')),
  );
}

// The layers, top to bottom: bin > cli > local and infra > functions > shared, with shared/contract (the names
// and shapes that cross a boundary) at the bottom. An arrow back up makes a lower layer depend on a higher.
describe.each([
  ['shared', ['shared/']],
  ['shared/contract', ['shared/contract/', 'shared/core/model.ts']],
  ['functions', ['functions/', 'shared/']],
  ['infra', ['infra/', 'shared/']],
  ['local', ['local/', 'functions/', 'shared/']],
  ['cli', ['cli/', 'local/', 'functions/', 'shared/']],
])('%s/', (folder, allowed) => {
  it(`imports only from ${allowed.join(', ')}`, () => {
    // Act
    const outside = sourcesIn(folder).flatMap((file) =>
      importsOf(file)
        .filter((target) => !allowed.some((prefix) => target.startsWith(prefix)))
        .map((target) => `${file} -> ${target}`),
    );

    // Assess
    expect(outside).toEqual([]);
  });
});

/** The workflows: the steps of a job and of a record, built on the core, the contract and the rules. */
const WORKFLOWS = [
  'shared/pipeline/',
  'shared/worker/',
  'shared/batch/collect.ts',
  'shared/batch/launch.ts',
  'shared/batch/watch.ts',
  'shared/batch/staging.ts',
  'shared/message-batches/',
];
const isWorkflow = (file: string) => WORKFLOWS.some((prefix) => file.startsWith(prefix));

// Within shared/ and functions/: the model, the ports, the contract and the rules (catalog, budget, failures...)
// know no workflow, so a workflow can change without touching them; adapters implement ports, they do not
// call workflows; the stack reads names and rules, never a function's code.
describe.each([
  ['shared/core', 'a workflow', isWorkflow],
  [
    'shared',
    'a workflow, from a rule',
    (target: string, file: string) => !isWorkflow(file) && isWorkflow(target),
  ],
  ['functions/adapters', 'a workflow', isWorkflow],
  [
    'infra',
    'a workflow or a function',
    (target: string) => isWorkflow(target) || target.startsWith('functions/'),
  ],
])('%s/', (folder, what, forbidden) => {
  it(`imports no ${what}`, () => {
    // Act
    const crossing = sourcesIn(folder).flatMap((file) =>
      importsOf(file)
        .filter((target) => forbidden(target, file))
        .map((target) => `${file} -> ${target}`),
    );

    // Assess
    expect(crossing).toEqual([]);
  });
});
