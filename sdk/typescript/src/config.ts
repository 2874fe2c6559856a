/** Where the hub is and which key to use: arguments, else AGORA_URL / AGORA_API_KEY, else the local hub's admin key. */

import { readFileSync } from "node:fs";
import { join } from "node:path";

export const DEFAULT_URL = "http://127.0.0.1:8080";

export interface ConnectionOptions {
  /** The hub's address (default: `AGORA_URL`, else http://127.0.0.1:8080). */
  url?: string;
  /** An API key or agent token (default: `AGORA_API_KEY`, else the local hub's `<dataDir>/admin.key`). */
  apiKey?: string;
  /** The local hub's data directory, where `agora serve` wrote `admin.key` (default: `AGORA_DATA_DIR`, else `.agora`). */
  dataDir?: string;
}

export interface ClientConfig {
  url: string;
  apiKey: string | null;
  /** Where the key came from: `argument`, `AGORA_API_KEY`, the key file's path, `registration` or `none`. */
  keySource: string;
}

export function resolveConfig(options: ConnectionOptions = {}, env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const url = (options.url || env.AGORA_URL || DEFAULT_URL).replace(/\/+$/, "");
  if (options.apiKey) return { url, apiKey: options.apiKey, keySource: "argument" };
  if (env.AGORA_API_KEY) return { url, apiKey: env.AGORA_API_KEY, keySource: "AGORA_API_KEY" };
  const keyFile = join(options.dataDir || env.AGORA_DATA_DIR || ".agora", "admin.key");
  try {
    return { url, apiKey: readFileSync(keyFile, "utf8").trim(), keySource: keyFile };
  } catch {
    return { url, apiKey: null, keySource: "none" };
  }
}
