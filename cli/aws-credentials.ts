import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { UsageError } from './errors.ts';

/** Commands that call AWS use the default credential chain; say so plainly, and what else to do, when it finds nothing. */
export async function requireAwsCredentials(
  region: string,
  needed: { for: string; otherwise: string } = {
    for: '--bedrock aws',
    otherwise: 'run with --bedrock local',
  },
): Promise<void> {
  const client = new BedrockRuntimeClient({ region });
  try {
    await client.config.credentials();
  } catch {
    throw new UsageError(
      `No AWS credentials found for ${needed.for}.`,
      `Configure the default credential chain (aws configure, AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or ${needed.otherwise}.`,
    );
  } finally {
    client.destroy();
  }
}
