// The mock AWS of bench/run.ts, in a process of its own: AWS is remote, so
// the mock's work (signature checks, serving 512 KiB blocks) must not share
// the client's event loop. Prints its config as one JSON line, then answers
// one line per command on stdin:
//   delay <ms>        adds latency to every GetSnapshotBlock
//   throttle <ratio>  refuses that share of GetSnapshotBlock calls as AWS throttles them (0: none)
//   cpu               this process's CPU time so far, ms
//   warm              takes the checksum of every block of every snapshot now: AWS stores them with
//                     the snapshot, while the mock takes each on its first GetSnapshotBlock
// Arguments: the blocks of the measured volume, then those of the 1-in-flight volume.
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { seededBytes, VirtualDisk } from '@syncproxy/testkit/mock';
import { startMockAws } from '../src/mock/index.js';

const BLOCK = 524_288;
const blockCounts = [Number(process.argv[2] ?? 256), Number(process.argv[3] ?? 64)];

const aws = await startMockAws();
blockCounts.forEach((blocks, volume) => {
  const disk = new VirtualDisk({
    sizeBytes: 1024 ** 3 * Math.max(1, Math.ceil((blocks * 2 * BLOCK) / 1024 ** 3)),
  });
  // Every other block written, so extents are many and reads are single blocks.
  for (let i = 0; i < blocks; i++) disk.write(i * 2 * BLOCK, seededBytes(volume * 1_000_000 + i, BLOCK));
  aws.addInstance({ name: `bench-${volume}`, volumes: [{ disk }] });
});
process.stdout.write(`${JSON.stringify(aws.config())}\n`);

let delay: { remove(): void } | undefined;
let throttle: { remove(): void } | undefined;
for await (const line of createInterface({ input: process.stdin })) {
  const [command, value] = line.split(' ');
  if (command === 'delay') {
    delay?.remove();
    delay = Number(value) > 0 ? aws.delayBlocks(Number(value)) : undefined;
    process.stdout.write('ok\n');
  } else if (command === 'throttle') {
    throttle?.remove();
    throttle =
      Number(value) > 0 ? aws.throttle({ ratio: Number(value), operation: 'GetSnapshotBlock' }) : undefined;
    process.stdout.write('ok\n');
  } else if (command === 'warm') {
    for (const snapshot of aws.state.snapshots.values()) {
      for (const index of snapshot.view.writtenBlocks()) {
        if (snapshot.checksums.has(index)) continue;
        const data = snapshot.view.read(index * BLOCK, BLOCK);
        snapshot.checksums.set(index, createHash('sha256').update(data).digest('base64'));
      }
    }
    process.stdout.write('ok\n');
  } else if (command === 'cpu') {
    const used = process.cpuUsage();
    process.stdout.write(`${(used.user + used.system) / 1000}\n`);
  }
}
// stdin closed: the bench is done.
await aws.close();
