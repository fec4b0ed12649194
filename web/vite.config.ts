import { defineConfig } from "vite";

// The console is built into dist/console, which the Go package web embeds
// into the authms binary; authms dev serves it at / with a fallback to
// index.html for the console's own paths.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist/console",
    emptyOutDir: true,
    target: "es2022",
    // Kept on purpose (docs/console.md): the console is open source, and
    // the maps (about 1.2 MB, embedded and served at /assets/*.map, fetched
    // only by developer tools) let its stack traces and breakpoints show
    // the TypeScript sources.
    sourcemap: true,
  },
});
