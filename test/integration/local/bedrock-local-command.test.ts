import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';

describe('npm run bedrock:local', () => {
  it('prints its endpoint, serves Bedrock there, and stops cleanly on Ctrl-C', async () => {
    // Prepare
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'local/bedrock/main.ts', '--port', '0', '--speed', '0'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });

    // Act
    const endpoint = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no endpoint printed: ${output}`)), 20_000);
      child.stdout.on('data', () => {
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (match?.[1] !== undefined) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
    });
    const state = await fetch(`${endpoint}/_stand-in/state`).then((response) => response.json());
    child.kill('SIGINT');
    const [exitCode] = await once(child, 'exit');

    // Assess
    expect(state).toMatchObject({ region: 'us-west-2', quotas: [] });
    expect(output).toContain(`--endpoint-url ${endpoint}`);
    expect(exitCode).toBe(0);
  });

  it('refuses an unknown fault name with a clear message', async () => {
    // Act
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'local/bedrock/main.ts', '--fault', 'Bogus=0.5'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let errors = '';
    child.stderr.on('data', (chunk: Buffer) => {
      errors += chunk.toString();
    });
    const [exitCode] = await once(child, 'exit');

    // Assess
    expect(exitCode).toBe(2);
    expect(errors).toContain('"Bogus" is not a Bedrock error name');
  });
});
