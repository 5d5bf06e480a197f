import { execFile } from 'node:child_process';
import { SyncproxyError } from '@syncproxy/core';

/**
 * Runs a proxy-side tool (iscsiadm, sg_get_lba_status) without a shell. Its
 * argv holds OCIDs, IQNs and addresses only, never a key or a passphrase.
 */
export function runCommand(file: string, args: string[], signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { encoding: 'utf8', maxBuffer: 64 << 20, ...(signal ? { signal } : {}) },
      (error, stdout, stderr) => {
        if (error === null) return resolve(stdout);
        const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
        reject(
          new SyncproxyError(
            missing
              ? `${file} is not installed on the proxy (install ${file === 'iscsiadm' ? 'open-iscsi' : 'sg3_utils'})`
              : `${file} ${args[0] ?? ''} failed: ${String(stderr || error.message)
                  .trim()
                  .slice(0, 500)}`,
            { code: signal?.aborted ? 'aborted' : missing ? 'unsupported' : 'io', cause: error },
          ),
        );
      },
    );
  });
}
