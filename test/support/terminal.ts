import type { Terminal } from '../../cli/terminal.ts';

/** A terminal that keeps what a command wrote, as a pipe would get it (no colours, a status line per change). */
export function recordingTerminal(): Terminal & {
  readonly stdout: () => string;
  readonly stderr: () => string;
} {
  let stdout = '';
  let stderr = '';
  const plain = (text: string) => text;
  return {
    interactive: false,
    out: (text) => {
      stdout += text;
    },
    err: (text) => {
      stderr += text;
    },
    status: (line) => {
      stdout += `${line}\n`;
    },
    endStatus: () => {},
    bold: plain,
    red: plain,
    green: plain,
    dim: plain,
    stdout: () => stdout,
    stderr: () => stderr,
  };
}
