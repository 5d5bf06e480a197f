import { format } from 'node:util';

/** Tees console output into `sink` for the secret scan; returns the undo. */
export function captureConsole(sink: (line: string) => void): () => void {
  const methods = ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const;
  const originals = methods.map((m) => console[m]);
  methods.forEach((m, i) => {
    const original = originals[i]!;
    console[m] = (...args: unknown[]) => {
      sink(format(...args));
      original.apply(console, args);
    };
  });
  return () =>
    methods.forEach((m, i) => {
      console[m] = originals[i]!;
    });
}
