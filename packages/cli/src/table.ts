/** A column of a plain-text table: its heading and how to show a row's value. */
export interface Column<Row> {
  header: string;
  value: (row: Row) => string;
  /** Numbers read better right-aligned. */
  align?: 'left' | 'right';
}

/** A table with a header line, columns two spaces apart, no trailing spaces. */
export function renderTable<Row>(rows: readonly Row[], columns: readonly Column<Row>[]): string {
  const cells = rows.map((row) => columns.map((column) => column.value(row)));
  const widths = columns.map((column, i) =>
    Math.max(column.header.length, ...cells.map((line) => line[i]!.length)),
  );
  const line = (values: string[]) =>
    values
      .map((value, i) =>
        columns[i]!.align === 'right' ? value.padStart(widths[i]!) : value.padEnd(widths[i]!),
      )
      .join('  ')
      .trimEnd();
  return `${[line(columns.map((c) => c.header)), ...cells.map(line)].join('\n')}\n`;
}
