// uws-pubsub — a minimal pub/sub server on uWebSockets, the C++ peer of the
// benchmarks (bench/run.sh builds it when UWS_DIR points at a uWebSockets
// checkout with its uSockets submodule; nothing of uWS is in this repository).
//
// It speaks the URL scheme nchan uses in bench/run.sh, so `herald-load
// --target nchan` drives it unchanged:
//   GET  /sub/<topic>   WebSocket upgrade; the socket is subscribed to <topic>
//   POST /pub/<topic>   the body is published to <topic> as one text message
//
// Usage: uws-pubsub PORT   (listens on 127.0.0.1, one thread, no TLS, no
// compression: what Herald's benchmarks compare against).

#include "App.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace
{

struct Subscriber
{
  std::string topic;
};

constexpr std::string_view kSubPrefix = "/sub/";
constexpr std::string_view kPubPrefix = "/pub/";
constexpr size_t kMaxBody = 1 << 20;

} // namespace

int
main (int argc, char **argv)
{
  if (argc != 2)
    {
      std::fprintf (stderr, "usage: %s PORT\n", argv[0]);
      return 2;
    }
  int port = std::atoi (argv[1]);
  uWS::App app;

  app.ws<Subscriber> ("/sub/*",
                      {
                          .compression = uWS::DISABLED,
                          .maxPayloadLength = 16 * 1024,
                          .idleTimeout = 0,
                          // Like Herald's send-queue-max-bytes: a reader that falls this
                          // far behind is closed rather than buffered without bound.
                          .maxBackpressure = 4 * 1024 * 1024,
                          .closeOnBackpressureLimit = true,
                          .upgrade =
                              [] (auto *res, auto *req, auto *context) {
                                std::string topic (req->getUrl ().substr (kSubPrefix.size ()));
                                res->template upgrade<Subscriber> (
                                    Subscriber{ std::move (topic) },
                                    req->getHeader ("sec-websocket-key"),
                                    req->getHeader ("sec-websocket-protocol"),
                                    req->getHeader ("sec-websocket-extensions"), context);
                              },
                          .open = [] (auto *ws) { ws->subscribe (ws->getUserData ()->topic); },
                          .message = [] (auto *, std::string_view, uWS::OpCode) {},
                      })
      .post ("/pub/*",
             [&app] (auto *res, auto *req) {
               std::string topic (req->getUrl ().substr (kPubPrefix.size ()));
               res->onAborted ([] () {});
               res->onData ([res, &app, topic = std::move (topic),
                             body = std::string ()] (std::string_view chunk, bool last) mutable {
                 if (body.size () + chunk.size () > kMaxBody)
                   {
                     res->writeStatus ("413 Payload Too Large")->end ("too large\n", true);
                     return;
                   }
                 body.append (chunk);
                 if (!last)
                   return;
                 app.publish (topic, body, uWS::OpCode::TEXT, false);
                 res->writeHeader ("Content-Type", "application/json")->end ("{}");
               });
             })
      .listen ("127.0.0.1", port,
               [port] (auto *listen_socket) {
                 if (!listen_socket)
                   {
                     std::fprintf (stderr, "uws-pubsub: cannot listen on 127.0.0.1:%d\n", port);
                     std::exit (1);
                   }
                 std::fprintf (stderr, "uws-pubsub: listening on 127.0.0.1:%d\n", port);
               })
      .run ();
  return 0;
}
