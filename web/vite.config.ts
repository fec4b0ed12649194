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
    sourcemap: true,
  },
});
