import { type ChildProcess, spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const RUNTIME = fileURLToPath(new URL('./lambda-runtime.mjs', import.meta.url));

export interface BundledFunctionOptions {
  /** The function's asset directory in the cloud assembly. */
  readonly assetDirectory: string;
  /** The template's Handler setting, e.g. index.handler. */
  readonly handler: string;
  readonly name: string;
  /** Exactly the variables the function gets: no others reach it. */
  readonly environment: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}

/**
 * A function's deployed artifact running as Lambda runs it: its asset copied outside the source tree (so
 * nothing of this repository's node_modules can fill a gap in the bundle), loaded once in its own Node
 * process with only the given environment, invoked as often as asked. A bundle that cannot load (a missing
 * module, a wrong handler name, a setting its config rejects) makes `start` fail with what it printed.
 */
export class BundledFunction {
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private sequence = 0;
  private stderr = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly copy: string,
  ) {}

  static async start(options: BundledFunctionOptions): Promise<BundledFunction> {
    const copy = await mkdtemp(path.join(tmpdir(), `lambda-${options.name}-`));
    await cp(options.assetDirectory, copy, { recursive: true });
    const child = spawn(
      process.execPath,
      [RUNTIME, copy, options.handler, options.name, String(options.timeoutMs)],
      { cwd: copy, env: { ...options.environment }, stdio: ['pipe', 'ignore', 'pipe', 'pipe'] },
    );
    const started = new BundledFunction(child, copy);
    await started.listen();
    return started;
  }

  invoke(event: unknown): Promise<unknown> {
    this.sequence += 1;
    const id = this.sequence;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin?.write(`${JSON.stringify({ id, event })}\n`);
    });
  }

  async stop(): Promise<void> {
    this.child.kill();
    await rm(this.copy, { recursive: true, force: true });
  }

  /** Resolves once the module has loaded; rejects with its output if the process ends first. */
  private listen(): Promise<void> {
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    return new Promise((ready, failed) => {
      const replies = createInterface({ input: this.child.stdio[3] as Readable });
      replies.on('line', (line) => {
        const reply = JSON.parse(line) as { ready?: true; id?: number; result?: unknown; error?: Error };
        if (reply.ready) return ready();
        const caller = this.pending.get(reply.id ?? -1);
        this.pending.delete(reply.id ?? -1);
        if (reply.error === undefined) caller?.resolve(reply.result);
        else caller?.reject(Object.assign(new Error(reply.error.message), { name: reply.error.name }));
      });
      this.child.on('exit', (code) => {
        const error = new Error(`the function's process ended (${code}): ${this.stderr}`);
        failed(error);
        for (const caller of this.pending.values()) caller.reject(error);
        this.pending.clear();
      });
    });
  }
}
