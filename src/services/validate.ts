// Field checks shared by the service functions. Each collects every violation, named by its JSON path,
// so a caller sees all of its mistakes at once.

import type { FieldViolation } from "../errors.ts";

export class Violations {
  readonly list: FieldViolation[] = [];

  requireString(field: string, value: string, max: number): void {
    if (value === "") this.list.push({ field, message: `${field} is required` });
    else this.maxLength(field, value, max);
  }

  maxLength(field: string, value: string, max: number): void {
    if (value.length > max) this.list.push({ field, message: `${field} must be at most ${max} characters` });
  }

  add(field: string, message: string): void {
    this.list.push({ field, message });
  }
}

export const MAX_ID_LENGTH = 256;
