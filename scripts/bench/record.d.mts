export declare const ROW_ORDER: readonly string[];
export interface BenchRow {
  id: string;
  path: string;
  project: string;
  anchor?: string;
  projectRuns: number[];
  anchorRuns?: number[];
  unit: string;
  ratio: number;
  ratioMeaning: string;
  required: string;
  aim?: string;
  pass: boolean;
  note?: string;
  projectCpu?: number[];
  anchorCpu?: number[];
}
export declare function machineCpuSeconds(): number | undefined;
export declare function measure(
  run: () => unknown,
): Promise<{ seconds: number; cpuSeconds: number | undefined }>;
export declare function median(values: number[]): number;
export declare function recordRow(row: BenchRow): void;
