// Parse each Mermaid file given with Mermaid's own parser, the one GitHub's
// renderer runs, in Node: jsdom stands in for the browser's DOM (Mermaid
// sanitizes labels through it); nothing is rendered or fetched.
// Exits 1, naming the file and the parse error, when any does not parse.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

let bad = 0;
for (const file of process.argv.slice(2)) {
  try {
    const parsed = await mermaid.parse(readFileSync(file, 'utf8'));
    console.log(`${file}: ${parsed.diagramType}`);
  } catch (e) {
    bad += 1;
    console.error(`${file}: ${e?.message ?? e}`);
  }
}
process.exit(bad === 0 ? 0 : 1);
