/** Where the CLI writes, and whether it may draw: colours and a redrawn bar only on a terminal. */
export interface Terminal {
  readonly interactive: boolean;
  out(text: string): void;
  err(text: string): void;
  /** Redraws one status line on a terminal; elsewhere prints it as a line when it changed. */
  status(line: string): void;
  /** Ends a status line being redrawn. */
  endStatus(): void;
  bold(text: string): string;
  red(text: string): string;
  green(text: string): string;
  dim(text: string): string;
}

export function terminal(
  stdout: NodeJS.WriteStream = process.stdout,
  stderr: NodeJS.WriteStream = process.stderr,
): Terminal {
  const interactive =
    stdout.isTTY === true && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb';
  const paint = (code: number) => (text: string) => (interactive ? `\u001b[${code}m${text}\u001b[0m` : text);
  let lastStatus = '';
  let drawing = false;
  return {
    interactive,
    out: (text) => stdout.write(text),
    err: (text) => stderr.write(text),
    status: (line) => {
      if (interactive) {
        stdout.write(`\r\u001b[2K${line}`);
        drawing = true;
      } else if (line !== lastStatus) {
        stdout.write(`${line}\n`);
      }
      lastStatus = line;
    },
    endStatus: () => {
      if (drawing) stdout.write('\n');
      drawing = false;
    },
    bold: paint(1),
    red: paint(31),
    green: paint(32),
    dim: paint(2),
  };
}

/** `[#########.........] 45%` */
export function bar(done: number, total: number | undefined, width = 24): string {
  if (total === undefined || total === 0) return `[${'.'.repeat(width)}]`;
  const filled = Math.min(width, Math.round((done / total) * width));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor((done / total) * 100)}%`;
}
