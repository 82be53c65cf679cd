#!/usr/bin/env node
// The `archio` command. Our sources are TypeScript, run through tsx's ESM loader.
import { register } from "tsx/esm/api"

register()
const { main } = await import("../bootstrap/cli.ts")
const code = await main(process.argv.slice(2))
process.exit(code)
