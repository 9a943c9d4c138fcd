// The official MCP SDK client (@modelcontextprotocol/sdk, Streamable HTTP)
// through Warden's gateway (`warden serve --demo`), with Warden access
// tokens as Bearer tokens.
//
// Run by crates/warden/tests/gateway_sdk.rs from a scratch dir whose
// node_modules links to the pinned install, with:
//   GATEWAY_URL                      Warden's base URL (http://127.0.0.1:PORT)
//   DEMO_AGENT_ID, DEMO_AGENT_SECRET the demo agent (scopes tools.call tool:echo)
//   DEMO_APP_ID, DEMO_APP_SECRET     the demo service (scopes inference.invoke tools.call)
//
// Each check prints PASS or FAIL; exits 1 when any failed, and prints
// "all checks passed" otherwise.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const BASE = process.env.GATEWAY_URL.replace(/\/$/, "");
const failures = [];

async function check(name, fn) {
  try {
    await fn();
    console.log(`PASS: ${name}`);
  } catch (e) {
    failures.push(name);
    console.log(`FAIL: ${name}\n${e?.stack ?? e}`);
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

/** An access token by OAuth client_credentials (client_secret_basic). */
async function token(id, secret, scope) {
  const form = new URLSearchParams({ grant_type: "client_credentials" });
  if (scope !== undefined) form.set("scope", scope);
  const response = await fetch(`${BASE}/oauth/token`, {
    method: "POST",
    headers: {
      authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: form,
  });
  const body = await response.json();
  assert(response.ok, `token for ${id}: ${response.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

/**
 * An MCP client connected through the gateway with `bearer`, and the
 * JSON-RPC ids of the requests it POSTed (to match error ids).
 */
async function connect(bearer) {
  const sent = [];
  const recordingFetch = async (url, init) => {
    if (init?.method === "POST" && typeof init.body === "string") {
      const message = JSON.parse(init.body);
      if (message.id !== undefined) sent.push(message.id);
    }
    return fetch(url, init);
  };
  const headers = bearer === undefined ? {} : { authorization: `Bearer ${bearer}` };
  const transport = new StreamableHTTPClientTransport(new URL(`${BASE}/mcp`), {
    requestInit: { headers },
    fetch: recordingFetch,
  });
  const client = new Client({ name: "warden-gateway-test", version: "0.0.0" });
  // The optional server-to-client stream (GET) is not offered; the SDK
  // reports that here and goes on.
  transport.onerror = () => {};
  await client.connect(transport);
  return { client, sent };
}

/** The JSON-RPC error object a rejected SDK call carries in its message. */
function jsonRpcError(error) {
  const text = String(error?.message ?? error);
  const match = text.match(/\{.*\}/s);
  assert(match, `no JSON in the error: ${text}`);
  const body = JSON.parse(match[0]);
  assert(body.jsonrpc === "2.0" && body.error, `not a JSON-RPC error: ${match[0]}`);
  return body;
}

async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error("the call succeeded");
}

const agentToken = await token(process.env.DEMO_AGENT_ID, process.env.DEMO_AGENT_SECRET);
let agent;

await check("the agent connects (initialize) and lists the tools", async () => {
  agent = await connect(agentToken);
  const info = agent.client.getServerVersion();
  assert(info?.name === "warden-demo-mcp", JSON.stringify(info));
  const { tools } = await agent.client.listTools();
  const names = tools.map((t) => t.name);
  assert(JSON.stringify(names) === JSON.stringify(["echo", "search_datasets"]), names);
});

await check("the agent calls echo (granted by tool:echo)", async () => {
  assert(agent, "not connected");
  const result = await agent.client.callTool({ name: "echo", arguments: { text: "hello through Warden" } });
  assert(!result.isError, JSON.stringify(result));
  assert(result.content?.[0]?.text === "hello through Warden", JSON.stringify(result));
});

await check("the agent is refused search_datasets (no tool:search_datasets) with a JSON-RPC error", async () => {
  assert(agent, "not connected");
  const e = await rejection(agent.client.callTool({ name: "search_datasets", arguments: { query: "fraud" } }));
  const body = jsonRpcError(e);
  assert(body.error.code === -32001 && body.error.message === "forbidden", JSON.stringify(body));
  assert(body.id === agent.sent.at(-1), `error id ${body.id}, request id ${agent.sent.at(-1)}`);
  assert(!/polic/i.test(JSON.stringify(body)), `the denial names a policy: ${JSON.stringify(body)}`);
});

await check("a token without tools.call cannot even initialize: JSON-RPC insufficient_scope", async () => {
  const scoped = await token(process.env.DEMO_APP_ID, process.env.DEMO_APP_SECRET, "inference.invoke");
  const e = await rejection(connect(scoped));
  const body = jsonRpcError(e);
  assert(body.error.code === -32001 && body.error.message === "insufficient_scope", JSON.stringify(body));
  assert(body.id === 0, `error id ${body.id}: initialize has id 0`);
});

await check("no token: the SDK sees 401", async () => {
  const e = await rejection(connect(undefined));
  assert(/401|invalid_token|unauthorized/i.test(String(e?.message ?? e)), String(e));
});

await agent?.client.close();
if (failures.length > 0) {
  console.log(`${failures.length} check(s) failed: ${JSON.stringify(failures)}`);
  process.exit(1);
}
console.log("all checks passed");
