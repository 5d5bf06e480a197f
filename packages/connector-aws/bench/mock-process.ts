// The mock AWS of bench/run.ts, in a process of its own: AWS is remote, so
// the mock's work (signature checks, serving 512 KiB blocks) must not share
// the client's event loop. Prints its config as one JSON line; "delay <ms>"
// on stdin adds latency to GetSnapshotBlock.
import { createInterface } from 'node:readline';
import { seededBytes, VirtualDisk } from '@syncproxy/testkit/mock';
import { startMockAws } from '../src/mock/index.js';

const BLOCK = 524_288;
const blocks = Number(process.argv[2] ?? 256);

const aws = await startMockAws();
const disk = new VirtualDisk({
  sizeBytes: 1024 ** 3 * Math.max(1, Math.ceil((blocks * 2 * BLOCK) / 1024 ** 3)),
});
// Every other block written, so extents are many and reads are single blocks.
for (let i = 0; i < blocks; i++) disk.write(i * 2 * BLOCK, seededBytes(i, BLOCK));
aws.addInstance({ name: 'bench', volumes: [{ disk }] });
process.stdout.write(`${JSON.stringify(aws.config())}\n`);

for await (const line of createInterface({ input: process.stdin })) {
  const [command, value] = line.split(' ');
  if (command === 'delay') {
    aws.delayBlocks(Number(value));
    process.stdout.write('ok\n');
  }
}
// stdin closed: the bench is done.
await aws.close();
