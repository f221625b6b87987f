#!/usr/bin/env node
// Subscribe to a Herald channel and print every message received.
//
//   npm ci
//   node subscribe.js news                          # WebSocket (the "ws" package)
//   node subscribe.js --sse news                    # Server-Sent Events ("eventsource")
//   node subscribe.js --url http://host:8080 --token JWT --count 1 news
//
// Each message's data is printed as one line of JSON. With --count N the
// script exits after N messages. "subscribed to CHANNEL" goes to stderr once
// the server has confirmed the subscription.
'use strict';

const WebSocket = require('ws');
const EventSource = require('eventsource');

function parseArgs (argv) {
  const args = { url: 'http://127.0.0.1:8080', sse: false, token: null, count: null, channel: null };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--url': args.url = argv[++i]; break;
      case '--sse': args.sse = true; break;
      case '--token': args.token = argv[++i]; break;
      case '--count': args.count = parseInt(argv[++i], 10); break;
      default: args.channel = argv[i];
    }
  }
  if (!args.channel) {
    console.error('usage: subscribe.js [--url URL] [--sse] [--token JWT] [--count N] CHANNEL');
    process.exit(2);
  }
  args.url = args.url.replace(/\/+$/, '');
  return args;
}

function subscribeWebSocket ({ url, token, count, channel }) {
  // Browsers cannot set headers on a WebSocket; "ws" can, so the token goes
  // into Authorization (the subprotocol "bearer.<token>" works too).
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const ws = new WebSocket(url.replace(/^http/, 'ws') + '/ws', { headers });
  let received = 0;

  ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', channel })));
  ws.on('message', (text) => {
    const frame = JSON.parse(text);
    switch (frame.type) {
      case 'subscribed':
        console.error(`subscribed to ${frame.channel}`);
        break;
      case 'ping': // Herald's application-level heartbeat
        ws.send(JSON.stringify({ type: 'pong' }));
        break;
      case 'message':
        console.log(JSON.stringify(frame.data));
        if (count !== null && ++received >= count) ws.close(1000);
        break;
      case 'error':
        console.error(`${frame.code}: ${frame.message}`);
        process.exitCode = 1;
        break;
    }
  });
  ws.on('close', (code) => {
    if (code !== 1000) {
      console.error(`closed by the server with ${code}`);
      process.exitCode = 1;
    }
  });
  ws.on('error', (err) => {
    console.error(err.message);
    process.exit(1);
  });
}

function subscribeSse ({ url, token, count, channel }) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const es = new EventSource(`${url}/events?channel=${encodeURIComponent(channel)}`, { headers });
  let received = 0;

  // Herald sends "event: connected" once the stream is subscribed.
  es.addEventListener('connected', () => console.error(`subscribed to ${channel}`));
  es.addEventListener('message', (event) => {
    console.log(JSON.stringify(JSON.parse(event.data).data));
    if (count !== null && ++received >= count) es.close();
  });
  es.addEventListener('error', (err) => {
    // EventSource reconnects by itself (resuming with Last-Event-ID); only
    // say so, unless the request itself was refused.
    if (err.status) {
      console.error(`HTTP ${err.status}: ${err.message}`);
      process.exit(1);
    }
    console.error('stream interrupted, reconnecting');
  });
}

const args = parseArgs(process.argv.slice(2));
(args.sse ? subscribeSse : subscribeWebSocket)(args);
