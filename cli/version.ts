import { readFileSync } from 'node:fs';

/**
 * This package's version, from its package.json: two levels up from the built CLI (dist/cli/), one from the
 * sources (cli/).
 */
export function packageVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const manifest = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (manifest.name === 'bedrock-batch-pipeline' && manifest.version !== undefined)
        return manifest.version;
    } catch {
      // Not this level: try the next.
    }
  }
  throw new Error('package.json of bedrock-batch-pipeline not found beside the CLI');
}
