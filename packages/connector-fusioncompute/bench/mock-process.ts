// The FusionCompute mock in its own process, as the platform would be remote: a VM with one
// 2 GiB volume, half written (1 MiB written, 1 MiB left empty, alternately). Prints the config,
// then the VM's URN, one JSON line each.
import { startMockFusionCompute } from '../src/mock/index.js';

const MIB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] ?? 2048);
const latencyMs = Number(process.argv[3] ?? 5);
const maxConnections = Number(process.argv[4] ?? 8);

const fc = await startMockFusionCompute({ readLatencyMs: latencyMs, maxConnectionsPerHost: maxConnections });
const { vm, volumes } = fc.addVm({ name: 'bench', volumes: [{ sizeBytes: sizeMiB * MIB }] });
const piece = new Uint8Array(MIB);
for (let mib = 0; mib < sizeMiB; mib += 2) {
  for (let i = 0; i < piece.length; i += 4) {
    const v = Math.imul(mib + 1, 2_654_435_761) ^ i;
    piece[i] = v & 0xff;
    piece[i + 1] = (v >>> 8) & 0xff;
    piece[i + 2] = (v >>> 16) & 0xff;
    piece[i + 3] = (v >>> 24) & 0xff;
  }
  volumes[0]!.disk.write(mib * MIB, piece);
}
process.stdout.write(`${JSON.stringify(fc.config())}\n${JSON.stringify(vm.urn)}\n`);
process.stdin.resume();
process.stdin.on('end', () => void fc.close().then(() => process.exit(0)));
