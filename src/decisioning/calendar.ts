// Calendar windows of volume caps: the day, ISO week (from Monday) or month that an instant falls in, in a
// time zone. The window's id names its counter, so every instance counts into the same one and a new
// window starts from zero without anything being reset.

export type CalendarWindow = "day" | "week" | "month";

export interface WindowSpan {
  /** `2026-12-02`, `W2026-11-30` (the week's Monday) or `2026-12`. */
  id: string;
  /** How far into the window the instant is, from 0 to 1. */
  elapsed: number;
  /** The window's length in milliseconds (a day is taken as 24 hours, also on days a clock moves). */
  lengthMs: number;
}

const DAY_MS = 86_400_000;
const formats = new Map<string, Intl.DateTimeFormat>();

function formatFor(timeZone: string): Intl.DateTimeFormat {
  let f = formats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    if (formats.size > 1_000) formats.clear();
    formats.set(timeZone, f);
  }
  return f;
}

/** Whether the runtime knows the IANA time zone. */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** The window holding `nowMs` in `timeZone`, and how far into it that instant is. */
export function calendarWindow(window: CalendarWindow, timeZone: string, nowMs: number): WindowSpan {
  const parts: Record<string, number> = {};
  for (const p of formatFor(timeZone).formatToParts(new Date(nowMs))) if (p.type !== "literal") parts[p.type] = Number(p.value);
  const { year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0 } = parts;
  const intoDay = ((hour * 60 + minute) * 60 + second) * 1000 + (nowMs % 1000);
  switch (window) {
    case "day":
      return { id: `${year}-${pad(month)}-${pad(day)}`, elapsed: intoDay / DAY_MS, lengthMs: DAY_MS };
    case "week": {
      const local = Date.UTC(year, month - 1, day);
      const sinceMonday = (new Date(local).getUTCDay() + 6) % 7;
      const monday = new Date(local - sinceMonday * DAY_MS);
      const id = `W${monday.getUTCFullYear()}-${pad(monday.getUTCMonth() + 1)}-${pad(monday.getUTCDate())}`;
      return { id, elapsed: (sinceMonday * DAY_MS + intoDay) / (7 * DAY_MS), lengthMs: 7 * DAY_MS };
    }
    case "month": {
      const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
      return { id: `${year}-${pad(month)}`, elapsed: ((day - 1) * DAY_MS + intoDay) / (days * DAY_MS), lengthMs: days * DAY_MS };
    }
  }
}

/**
 * What a window allows by now. Unpaced: all of it. Paced evenly: the share of the window that has passed,
 * rounded up, so the first unit is available from the window's first moment and the last at its end.
 */
export function allowanceNow(limit: number, span: WindowSpan, paced: boolean): number {
  if (!paced) return limit;
  return Math.min(limit, Math.max(1, Math.ceil(limit * Math.min(1, Math.max(0, span.elapsed)) - 1e-9)));
}
