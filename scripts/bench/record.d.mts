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
}
export declare function median(values: number[]): number;
export declare function recordRow(row: BenchRow): void;
