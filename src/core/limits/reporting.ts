/**
 * Where a front says that a limit bit: counted and logged (throttled) by the ops side. Each front
 * gets a sink typed with its own reason union, so a reason is a checked name, not a free string.
 */
export interface LimitSink<R extends string> {
  report(reason: R, source: string): void;
}

/** Hands out one sink per front; the front's name becomes the metric's `front` label. */
export interface LimitReports {
  forFront<R extends string>(front: string): LimitSink<R>;
}
