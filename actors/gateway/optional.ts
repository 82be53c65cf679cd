/**
 * `{ [name]: value }` when value is present, `{}` otherwise: spread into a command or a view,
 * it leaves optional fields out instead of setting them to undefined
 * (exactOptionalPropertyTypes, and JSON that does not carry empty fields).
 */
export const opt = <K extends string, V>(name: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [name]: value }) as { [P in K]?: V }
