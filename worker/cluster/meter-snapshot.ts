/** What worker/cluster/meter.ts counts: plain data, read by bench/cost.ts from Node as well. */
export interface MeterSnapshot {
  /** Object invocations by kind: alarm, fetch (WebSocket upgrade), wsMessage… */
  invocations: Record<string, number>;
  /** Rows by statement kind, "VERB table" (e.g. "INSERT rounds"). */
  rowsRead: Record<string, number>;
  rowsWritten: Record<string, number>;
  setAlarm: number;
  wsSent: number;
  /** Wall-clock time spent in the alarm handler (the object's billed duration, roughly). */
  alarmMs: number;
  /** The database's size now (stored data). */
  dbBytes: number;
}
