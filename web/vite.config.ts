import react from '@vitejs/plugin-react'
import { defineConfig } from 'vitest/config'

// The API serves the built app from its wwwroot, so the build lands there directly.
// In development the Vite server forwards API calls to a service on the default port.
const api = 'http://127.0.0.1:8080'

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: '../src/Jackcwf.Api/wwwroot',
    emptyOutDir: true,
    // The service sends a strict CSP (no inline script or style), so nothing may be inlined as a data: module.
    assetsInlineLimit: 0,
  },
  server: {
    proxy: {
      '/api': { target: api, changeOrigin: false },
      '/v1': { target: api, changeOrigin: false },
      '/health': { target: api, changeOrigin: false },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
  },
})
