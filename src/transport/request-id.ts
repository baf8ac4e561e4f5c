// Request ids: echoed when the caller sends a sensible one, generated otherwise.

import { newRequestId } from "../ids.ts";

const ACCEPTABLE = /^[\w.:-]{1,128}$/;

export function requestIdFrom(header: string | null | undefined): string {
  return header && ACCEPTABLE.test(header) ? header : newRequestId();
}
