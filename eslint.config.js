// Flat config: typescript-eslint's recommended rules over our sources, plus the layering rules.
import js from "@eslint/js"
import tseslint from "typescript-eslint"

/**
 * Forbids a folder's files to import from `folders` (top-level folders of the repository),
 * statically or with `import()`. Sources are relative paths, so "one or more ../ then the
 * folder" is how such an import reads from anywhere inside the folder.
 */
const mayNotImport = (folders, message) => {
  const source = `^(\\.\\./)+(${folders.join("|")})(/|$)`
  return {
    "no-restricted-imports": ["error", { patterns: [{ regex: source, message }] }],
    // no-restricted-imports sees only static imports; esquery cannot hold a "/" in a regex, hence \x2F.
    "no-restricted-syntax": [
      "error",
      { selector: `ImportExpression > Literal[value=/${source.replaceAll("/", "\\x2F")}/]`, message }
    ]
  }
}

export default tseslint.config(
  { ignores: ["dist/", ".scratch/", "node_modules/", ".archio/", "coverage/", ".tap/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: "readonly", console: "readonly", setTimeout: "readonly", clearTimeout: "readonly", setInterval: "readonly", clearInterval: "readonly", setImmediate: "readonly", Buffer: "readonly", URL: "readonly", TextEncoder: "readonly", TextDecoder: "readonly", performance: "readonly", structuredClone: "readonly", AbortController: "readonly", fetch: "readonly" }
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "error",
      "no-constant-condition": ["error", { checkLoops: false }]
    }
  },
  // Layering (DESIGN.md): protocol/ is the wire contract any client embeds, so it stands alone;
  // actors/ are wired by bootstrap/ and run by ops/, never the other way round.
  {
    files: ["protocol/**"],
    rules: mayNotImport(["actors", "bootstrap", "ops", "test"], "protocol/ is the wire contract: it imports nothing from actors/, bootstrap/, ops/ or test/.")
  },
  {
    files: ["actors/**"],
    rules: mayNotImport(["bootstrap", "ops"], "actors/ may not import bootstrap/ or ops/: wiring and operations depend on actors, not the other way round.")
  },
  {
    files: ["bootstrap/**"],
    rules: mayNotImport(["ops"], "bootstrap/ may not import ops/: ops/ runs and proves what bootstrap/ wires, and ships with nothing of it.")
  }
)
