import { describe, expect, it } from 'vitest';
import { InFlightBudget } from '../../src/transfer/in-flight-budget.js';

describe('InFlightBudget', () => {
  it('grants a larger bound on jobs to the waiters at once, and a smaller one only as jobs finish', async () => {
    const budget = new InFlightBudget(1024, 1);
    const granted: number[] = [];
    await budget.acquire(10);
    const waiting = [1, 2, 3].map((n) => budget.acquire(10).then(() => granted.push(n)));
    budget.setMaxJobs(3);
    await Promise.resolve();
    expect(granted).toEqual([1, 2]);
    expect(budget.jobsInUse).toBe(3);
    budget.setMaxJobs(1);
    budget.release(10);
    budget.release(10);
    await Promise.resolve();
    expect(granted).toEqual([1, 2]);
    budget.release(10);
    await Promise.all(waiting);
    expect(granted).toEqual([1, 2, 3]);
    expect(budget.jobsInUse).toBe(1);
  });
});
