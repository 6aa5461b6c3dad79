// Real clients against a running `lightboat serve`: the official openai package (chat, streamed
// chat, embeddings, errors) and the ws package (two generations in flight on one connection, a cancel, a
// reprioritize, JSON and protocol pings). Usage: node clients.mjs BASE_URL API_KEY
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import WebSocket from 'ws';

const [base, apiKey] = process.argv.slice(2);
let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed++;
  } catch (e) {
    failed++;
    console.log(`FAIL: ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

const client = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0, timeout: 60000 });
const model = (await client.models.list()).data[0].id;
const messages = [{ role: 'user', content: 'Tell me a story.' }];

let full = '';
await check('openai: chat completion', async () => {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 20, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  full = r.choices[0].message.content;
  assert.ok(full.length > 0);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 20);
});

await check('openai: streamed chat completion', async () => {
  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 20, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.choices.length > 0) {
      text += chunk.choices[0].delta.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, full, 'greedy: the stream says what the plain answer said');
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 20);
});

await check('openai: embeddings (float, batched, base64)', async () => {
  const one = await client.embeddings.create({ model, input: 'Once upon a time', encoding_format: 'float' });
  assert.equal(one.object, 'list');
  assert.equal(one.data.length, 1);
  const v = one.data[0].embedding;
  assert.ok(v.length > 0);
  const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-4, `L2 norm ${norm}`);
  assert.ok(one.usage.prompt_tokens > 0 && one.usage.total_tokens === one.usage.prompt_tokens);
  const many = await client.embeddings.create({ model, input: ['The cat sat', 'Once upon a time'] });
  assert.equal(many.data.length, 2);
  assert.equal(many.data[1].index, 1);
  // The package asks for base64 by default and decodes it: batched equals alone.
  many.data[1].embedding.forEach((x, i) => assert.ok(Math.abs(x - v[i]) < 1e-5, `dim ${i}`));
});

await check('openai: errors are typed', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  await assert.rejects(client.chat.completions.create({ model, messages, temperature: 5 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature');
  const noKey = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(noKey.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
});

await check('ws: two generations, a reprioritize and a cancel on one connection', async () => {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/ws`, { headers: { Authorization: `Bearer ${apiKey}` } });
  const events = [];
  let pong = false;
  let jsonPong = false;
  const finished = new Map();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout; events: ${JSON.stringify(events.slice(-5))}`)), 60000);
    ws.on('error', reject);
    ws.on('pong', () => { pong = true; });
    ws.on('open', () => {
      ws.ping();
      ws.send(JSON.stringify({ type: 'ping' }));
      ws.send(JSON.stringify({ type: 'generate', id: 'long', messages, max_tokens: 1500, priority: 'low' }));
      ws.send(JSON.stringify({ type: 'generate', id: 2, messages, max_tokens: 12, temperature: 0 }));
      ws.send(JSON.stringify({ type: 'cancel', id: 'nobody' }));
      ws.send('not json');
    });
    let cancelled = false;
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      events.push(m);
      if (m.type === 'pong') jsonPong = true;
      if (m.type === 'token' && m.id === 'long' && !cancelled) {
        cancelled = true;
        ws.send(JSON.stringify({ type: 'reprioritize', id: 'long', priority: 'high' }));
        ws.send(JSON.stringify({ type: 'cancel', id: 'long' }));
      }
      if ((m.type === 'done' || m.type === 'error') && m.id !== null && m.id !== 'nobody') finished.set(m.id, m);
      if (finished.has('long') && finished.has(2)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  ws.close();
  const long = finished.get('long');
  assert.equal(long.type, 'done');
  assert.equal(long.finish_reason, 'cancelled');
  assert.ok(long.usage.completion_tokens < 1500, 'cancelled early');
  const short = finished.get(2);
  assert.equal(short.type, 'done');
  assert.equal(short.finish_reason, 'length');
  assert.equal(short.usage.completion_tokens, 12);
  const shortText = events.filter((e) => e.type === 'token' && e.id === 2).map((e) => e.text).join('');
  const plain = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0 });
  assert.equal(shortText, plain.choices[0].message.content, 'WebSocket tokens = the HTTP answer');
  const errors = events.filter((e) => e.type === 'error');
  assert.ok(errors.some((e) => e.id === 'nobody' && e.code === 'unknown_id'), JSON.stringify(errors));
  assert.ok(errors.some((e) => e.id === null && e.code === 'invalid_json'), JSON.stringify(errors));
  assert.ok(!errors.some((e) => e.id === 'long'), 'reprioritize of a live generation is accepted');
  assert.ok(pong && jsonPong, 'protocol and JSON pings answered');
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
