import { readlinkSync } from 'node:fs';
import path from 'node:path';

/** How often the parent is looked for: a stopped wrapper is noticed within this. */
const WATCH_MS = 500;

/**
 * Stops this process as SIGTERM would when the Node process that started it ends. A wrapper in between
 * (tsx, a script runner) that is killed outright passes no signal on, and the job would go on with no one
 * to see it. A shell parent is not watched: `nohup bedrock-batch local up &` is meant to outlive its shell.
 * Where processes cannot be looked up (no /proc), nothing is watched.
 */
export function stopWithNodeParent(): void {
  const parent = process.ppid;
  if (!isNodeProcess(parent)) return;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, WATCH_MS);
  timer.unref();
}

function isNodeProcess(pid: number): boolean {
  try {
    return path.basename(readlinkSync(`/proc/${pid}/exe`)).startsWith('node');
  } catch {
    return false;
  }
}
