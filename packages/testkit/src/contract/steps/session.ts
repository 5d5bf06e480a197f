import type { ContractContext } from '../contract-context.js';
import { ContractViolation } from '../contract-violation.js';
import { captureResources } from '../resource-leaks.js';

/** connect() and verify(): a session, status normal and a host count. */
export async function verifyStep(ctx: ContractContext): Promise<void> {
  ctx.resourcesBeforeSession = captureResources();
  ctx.session = await ctx.call('connect()', () => ctx.connector.connect(ctx.config, ctx.connectorContext()));
  const status = await ctx.call('verify()', () => ctx.need(ctx.session, 'session').verify());
  if (status?.status !== 'normal') {
    throw new ContractViolation(
      `verify() reported status ${JSON.stringify(status?.status)}${status?.message ? ` (${status.message})` : ''}; expected normal`,
    );
  }
  if (!Number.isInteger(status.hostCount) || status.hostCount < 1) {
    throw new ContractViolation(
      `verify() reported hostCount ${JSON.stringify(status.hostCount)}; expected an integer >= 1 (the platform has a host)`,
    );
  }
}

/** listHosts(): the mock's host, named, with every disk at its exact size. */
export async function hostsStep(ctx: ContractContext): Promise<void> {
  const want = ctx.need(ctx.host, 'the mock host');
  const hosts = await ctx.call('listHosts()', () => ctx.need(ctx.session, 'session').listHosts());
  if (!Array.isArray(hosts)) throw new ContractViolation('listHosts() did not return an array');
  const found = hosts.find((h) => h.id === want.id);
  if (found === undefined) {
    throw new ContractViolation(
      `listHosts() did not list host ${want.id} (listed: ${hosts.map((h) => h.id).join(', ') || 'none'})`,
    );
  }
  const problems: string[] = [];
  if (typeof found.name !== 'string' || found.name === '') problems.push('the host has no name');
  for (const disk of want.disks) {
    const listed = found.disks?.find((d) => d.id === disk.id);
    if (listed === undefined) problems.push(`disk ${disk.id} is not listed`);
    else if (listed.sizeBytes !== disk.sizeBytes)
      problems.push(
        `disk ${disk.id} has sizeBytes ${listed.sizeBytes}; the platform disk is ${disk.sizeBytes}`,
      );
  }
  if ((found.disks?.length ?? 0) !== want.disks.length)
    problems.push(`the host lists ${found.disks?.length ?? 0} disks; it has ${want.disks.length}`);
  if (problems.length > 0) throw new ContractViolation(`listHosts(): ${problems.join('; ')}`);
  ctx.listedHost = found;
}

/** prechecks(): numbered, explained checks, each pass, warn or fail, with a remedy when not pass. */
export async function prechecksStep(ctx: ContractContext): Promise<void> {
  const checks = await ctx.call('prechecks()', () =>
    ctx.need(ctx.session, 'session').prechecks(ctx.need(ctx.listedHost, 'the listed host')),
  );
  if (!Array.isArray(checks)) throw new ContractViolation('prechecks() did not return an array');
  const ids = new Set<string>();
  checks.forEach((check, i) => {
    const where = `prechecks()[${i}]`;
    if (typeof check?.id !== 'string' || check.id === '') throw new ContractViolation(`${where} has no id`);
    if (ids.has(check.id)) throw new ContractViolation(`${where} repeats id ${check.id}`);
    ids.add(check.id);
    if (typeof check.title !== 'string' || typeof check.detail !== 'string' || check.detail === '') {
      throw new ContractViolation(`${where} (${check.id}) needs a title and a detail that explains it`);
    }
    if (!['pass', 'warn', 'fail'].includes(check.status))
      throw new ContractViolation(`${where} (${check.id}) has status ${JSON.stringify(check.status)}`);
    if (check.status !== 'pass' && !check.remedy)
      throw new ContractViolation(`${where} (${check.id}) is ${check.status} without a remedy`);
  });
}
