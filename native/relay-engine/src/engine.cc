// noray's native relay data path: the relay sockets, their forwarding table and the per-datagram
// limits live here; TypeScript (src/core/relay/native-engine.ts) keeps the control plane.
//
// Every relay socket is watched by a uv_poll handle on Node's own loop, so there is no thread and
// no lock: a readable socket is drained with recvmmsg in batches of BATCH, each batch is forwarded
// with sendmmsg (grouped by outgoing socket) before the next is read, so batching never holds a
// datagram back. A datagram from a source the table does not know is handed up to JavaScript
// (the rare path: the NAT-mapping learning decision stays in mapping.ts), which installs what it
// learned and hands the datagram back through forwardVia().
//
// Every index and address from JavaScript is checked; a datagram is only ever read into and sent
// from the engine's own fixed buffers.
#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

constexpr int BATCH = 64;
// Largest UDP payload (IPv6 without jumbograms) plus room to notice nothing larger exists.
constexpr size_t MAX_DATAGRAM = 65536;
// Batches read from one socket per wake-up before the loop gets to the others.
constexpr int ROUNDS = 8;

// Must match DROP_REASONS in src/core/relay/relay.ts.
enum Drop {
  UNALLOCATED,
  NO_PERMISSION,
  MAPPING_LOCKED,
  RELAY_BANDWIDTH,
  GLOBAL_BANDWIDTH,
  LIFETIME_DURATION,
  LIFETIME_TRAFFIC,
  SEND_ERROR,
  DROP_COUNT
};
constexpr int ADMIT = -1;
constexpr uint32_t NONE = UINT32_MAX;

struct SourceKey {
  uint32_t slot;
  uint16_t port;
  uint8_t addr[16];
  bool operator==(const SourceKey& other) const {
    return slot == other.slot && port == other.port && memcmp(addr, other.addr, 16) == 0;
  }
};

struct SourceKeyHash {
  size_t operator()(const SourceKey& key) const {
    uint64_t a, b;
    memcpy(&a, key.addr, 8);
    memcpy(&b, key.addr + 8, 8);
    uint64_t h = a * 0x9E3779B97F4A7C15ULL;
    h ^= b + 0x632BE59BD9B4E019ULL + (h << 6) + (h >> 2);
    h ^= (static_cast<uint64_t>(key.slot) << 16 | key.port) * 0xC2B2AE3D27D4EB4FULL;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

struct Source {
  uint32_t lane;
  // A learned NAT mapping, not the sender's registered endpoint.
  bool learned;
};

class Engine;

struct Slot {
  uv_poll_t poll;
  Engine* engine;
  uint32_t index;
  int fd;
  int port;
  bool polling;
  bool allocated;
  double lastActive;
  double bytes;
};

struct Player {
  bool used = false;
  double createdAt = 0;
  double totalBytes = 0;
  double sliceEnd = 0;
  double sliceBytes = 0;
};

struct Lane {
  bool used = false;
  uint32_t inbound = NONE;
  uint32_t sender = NONE;
  uint32_t reverse = NONE;
  bool hasLearned = false;
  double heardAt = -INFINITY;
  sockaddr_storage reach{};
  socklen_t reachLength = 0;
};

struct Outgoing {
  int fd;
  sockaddr_storage to;
  socklen_t toLength;
};

// An address in the engine's one form: 16 bytes, IPv4 as ::ffff:a.b.c.d.
bool ParseAddress(const std::string& text, uint8_t out[16]) {
  in6_addr v6;
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    memcpy(out, &v6, 16);
    return true;
  }
  in_addr v4;
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, &v4, 4);
    return true;
  }
  return false;
}

bool IsMappedV4(const uint8_t addr[16]) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(addr, prefix, 12) == 0;
}

// The sockaddr to send to from a socket of `family`; false when that family cannot reach it.
bool MakeSockaddr(int family, const uint8_t addr[16], uint16_t port, sockaddr_storage* out, socklen_t* length) {
  memset(out, 0, sizeof *out);
  if (family == AF_INET) {
    if (!IsMappedV4(addr)) return false;
    auto* in = reinterpret_cast<sockaddr_in*>(out);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    memcpy(&in->sin_addr, addr + 12, 4);
    *length = sizeof(sockaddr_in);
    return true;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  memcpy(&in6->sin6_addr, addr, 16);
  *length = sizeof(sockaddr_in6);
  return true;
}

// A received datagram's source in the engine's form; false for anything but IPv4/IPv6.
bool SourceOf(const sockaddr_storage& from, uint8_t addr[16], uint16_t* port) {
  if (from.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&from);
    memset(addr, 0, 10);
    addr[10] = addr[11] = 0xff;
    memcpy(addr + 12, &in->sin_addr, 4);
    *port = ntohs(in->sin_port);
    return true;
  }
  if (from.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&from);
    memcpy(addr, &in6->sin6_addr, 16);
    *port = ntohs(in6->sin6_port);
    return true;
  }
  return false;
}

// The address as Node's dgram reports it on a socket of that family.
std::string AddressText(int family, const uint8_t addr[16]) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (family == AF_INET) {
    inet_ntop(AF_INET, addr + 12, text, sizeof text);
  } else {
    inet_ntop(AF_INET6, addr, text, sizeof text);
  }
  return text;
}

double WallClockMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return std::floor(static_cast<double>(ts.tv_sec) * 1000.0 + static_cast<double>(ts.tv_nsec) / 1e6);
}

void OnReadable(uv_poll_t* handle, int status, int events);
void OnClosed(uv_handle_t* handle);

class Engine : public Napi::ObjectWrap<Engine> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function constructor = DefineClass(
        env, "NativeRelay",
        {
            InstanceMethod("bind", &Engine::Bind),
            InstanceMethod("closeSlot", &Engine::CloseSlot),
            InstanceMethod("setRelay", &Engine::SetRelay),
            InstanceMethod("setPlayer", &Engine::SetPlayer),
            InstanceMethod("deletePlayer", &Engine::DeletePlayer),
            InstanceMethod("setLane", &Engine::SetLane),
            InstanceMethod("deleteLane", &Engine::DeleteLane),
            InstanceMethod("setReach", &Engine::SetReach),
            InstanceMethod("setHeardAt", &Engine::SetHeardAt),
            InstanceMethod("heardAt", &Engine::HeardAt),
            InstanceMethod("setSource", &Engine::SetSource),
            InstanceMethod("deleteSource", &Engine::DeleteSource),
            InstanceMethod("forwardVia", &Engine::ForwardVia),
            InstanceMethod("counters", &Engine::Counters),
            InstanceMethod("relayCounters", &Engine::RelayCounters),
            InstanceMethod("close", &Engine::Close),
        });
    exports.Set("NativeRelay", constructor);
    return exports;
  }

  // new NativeRelay({ family: 4|6, socketBufferBytes, bytesPerSlice, sliceMs, maxLifetimeMs,
  //                   maxLifetimeBytes, globalBytesPerSlice, onUnknown(slot, address, port, data), now? })
  explicit Engine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Engine>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) {
      Napi::TypeError::New(env, "options object expected").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object options = info[0].As<Napi::Object>();
    auto number = [&](const char* name) -> double {
      Napi::Value value = options.Get(name);
      return value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : NAN;
    };
    family_ = number("family") == 6 ? AF_INET6 : AF_INET;
    socketBufferBytes_ = number("socketBufferBytes");
    bytesPerSlice_ = number("bytesPerSlice");
    sliceMs_ = number("sliceMs");
    maxLifetimeMs_ = number("maxLifetimeMs");
    maxLifetimeBytes_ = number("maxLifetimeBytes");
    globalBytesPerSlice_ = number("globalBytesPerSlice");
    for (double value : {socketBufferBytes_, bytesPerSlice_, sliceMs_, maxLifetimeMs_, maxLifetimeBytes_, globalBytesPerSlice_}) {
      if (std::isnan(value)) {
        Napi::TypeError::New(env, "every limit must be a number").ThrowAsJavaScriptException();
        return;
      }
    }
    Napi::Value onUnknown = options.Get("onUnknown");
    if (!onUnknown.IsFunction()) {
      Napi::TypeError::New(env, "onUnknown must be a function").ThrowAsJavaScriptException();
      return;
    }
    onUnknown_ = Napi::Persistent(onUnknown.As<Napi::Function>());
    Napi::Value now = options.Get("now");
    if (now.IsFunction()) nowFn_ = Napi::Persistent(now.As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "noray:native-relay");
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    loop_ = loop;
  }

  ~Engine() override {
    // Collected without close(): the handles outlive the engine and free themselves.
    for (Slot* slot : slots_) {
      if (slot == nullptr) continue;
      slot->engine = nullptr;
      ReleaseSlot(slot);
    }
  }

  void Drain(Slot* slot) {
    if (closed_) return;
    if (rx_.empty()) AllocateBuffers();
    now_ = Now();
    if (closed_) return;
    const uint32_t index = slot->index;
    for (int round = 0; round < ROUNDS; round++) {
      for (int i = 0; i < BATCH; i++) {
        iovIn_[i].iov_base = &rx_[static_cast<size_t>(i) * MAX_DATAGRAM];
        iovIn_[i].iov_len = MAX_DATAGRAM;
        msgIn_[i].msg_hdr = msghdr{};
        msgIn_[i].msg_hdr.msg_name = &from_[i];
        msgIn_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        msgIn_[i].msg_hdr.msg_iov = &iovIn_[i];
        msgIn_[i].msg_hdr.msg_iovlen = 1;
        msgIn_[i].msg_len = 0;
      }
      int count = recvmmsg(slot->fd, msgIn_.data(), BATCH, MSG_DONTWAIT, nullptr);
      if (count < 0 && errno == EINTR) continue;
      if (count <= 0) break;
      for (int i = 0; i < count; i++) {
        Receive(index, i, msgIn_[i].msg_len);
        if (closed_) return;
      }
      Flush();
      if (count < BATCH) break;
      // A handed-up datagram may have closed or freed this socket's slot meanwhile.
      if (slots_[index] == nullptr || !slots_[index]->polling) break;
    }
  }

  void HandleClosed(Slot* slot) {
    delete slot;
    if (--closing_ == 0 && closed_) FinishClose();
  }

 private:
  // One received datagram: forwarded (queued for the batch's send), dropped, or handed up.
  void Receive(uint32_t slotIndex, int i, size_t size) {
    Slot* slot = slots_[slotIndex];
    if (slot == nullptr) return;
    if (!slot->allocated) {
      drops_[UNALLOCATED] += 1;
      return;
    }
    SourceKey key{};
    key.slot = slotIndex;
    if (!SourceOf(from_[i], key.addr, &key.port)) {
      drops_[NO_PERMISSION] += 1;
      return;
    }
    auto found = sources_.find(key);
    if (found == sources_.end() ||
        (!found->second.learned && found->second.lane < lanes_.size() && lanes_[found->second.lane].hasLearned)) {
      HandUp(slotIndex, key, i, size);
      return;
    }
    Forward(found->second.lane, &rx_[static_cast<size_t>(i) * MAX_DATAGRAM], size, now_, true);
  }

  // The limits, the counters and the send, in the JavaScript engine's order (engine.ts forward()).
  void Forward(uint32_t laneIndex, const uint8_t* data, size_t size, double now, bool queue) {
    if (!Complete(laneIndex)) {
      drops_[NO_PERMISSION] += 1;
      return;
    }
    Lane& lane = lanes_[laneIndex];
    lane.heardAt = now;
    const double bytes = static_cast<double>(size);
    int verdict = Admit(players_[lane.sender], bytes, now);
    if (verdict != ADMIT) {
      drops_[verdict] += 1;
      return;
    }
    if (now >= globalSliceEnd_) {
      globalSliceEnd_ = now + sliceMs_;
      globalSliceBytes_ = 0;
    }
    if (globalSliceBytes_ + bytes > globalBytesPerSlice_) {
      drops_[GLOBAL_BANDWIDTH] += 1;
      return;
    }
    globalSliceBytes_ += bytes;
    const Lane& back = lanes_[lane.reverse];
    Slot* inbound = slots_[lane.inbound];
    Slot* out = slots_[back.inbound];
    inbound->lastActive = now;
    out->lastActive = now;
    inbound->bytes += bytes;
    packets_ += 1;
    bytes_ += bytes;
    if (back.reachLength == 0) {
      drops_[SEND_ERROR] += 1;
      return;
    }
    if (queue) {
      const int n = queued_++;
      Outgoing& entry = outgoing_[n];
      entry.fd = out->fd;
      memcpy(&entry.to, &back.reach, back.reachLength);
      entry.toLength = back.reachLength;
      iovOut_[n].iov_base = const_cast<uint8_t*>(data);
      iovOut_[n].iov_len = size;
      return;
    }
    ssize_t sent;
    do {
      sent = sendto(out->fd, data, size, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&back.reach), back.reachLength);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) drops_[SEND_ERROR] += 1;
  }

  // Both directions, their sockets and the sender are there (JavaScript keeps them so; checked anyway).
  bool Complete(uint32_t laneIndex) const {
    if (laneIndex >= lanes_.size()) return false;
    const Lane& lane = lanes_[laneIndex];
    if (!lane.used || lane.sender >= players_.size() || !players_[lane.sender].used) return false;
    if (lane.reverse >= lanes_.size() || !lanes_[lane.reverse].used) return false;
    const uint32_t in = lane.inbound, out = lanes_[lane.reverse].inbound;
    return in < slots_.size() && slots_[in] != nullptr && out < slots_.size() && slots_[out] != nullptr;
  }

  int Admit(Player& player, double size, double now) {
    if (now - player.createdAt >= maxLifetimeMs_) return LIFETIME_DURATION;
    if (player.totalBytes + size > maxLifetimeBytes_) return LIFETIME_TRAFFIC;
    if (now >= player.sliceEnd) {
      player.sliceEnd = now + sliceMs_;
      player.sliceBytes = 0;
    }
    if (player.sliceBytes + size > bytesPerSlice_) return RELAY_BANDWIDTH;
    player.sliceBytes += size;
    player.totalBytes += size;
    return ADMIT;
  }

  // sendmmsg per run of datagrams leaving through the same socket; a failed one is counted and skipped.
  void Flush() {
    int start = 0;
    while (start < queued_) {
      int end = start + 1;
      while (end < queued_ && outgoing_[end].fd == outgoing_[start].fd) end++;
      for (int i = start; i < end; i++) {
        msgOut_[i].msg_hdr = msghdr{};
        msgOut_[i].msg_hdr.msg_name = &outgoing_[i].to;
        msgOut_[i].msg_hdr.msg_namelen = outgoing_[i].toLength;
        msgOut_[i].msg_hdr.msg_iov = &iovOut_[i];
        msgOut_[i].msg_hdr.msg_iovlen = 1;
      }
      int at = start;
      while (at < end) {
        int sent = sendmmsg(outgoing_[start].fd, &msgOut_[at], static_cast<unsigned>(end - at), MSG_DONTWAIT);
        if (sent < 0) {
          if (errno == EINTR) continue;
          drops_[SEND_ERROR] += 1;
          at++;
        } else if (sent == 0) {
          drops_[SEND_ERROR] += static_cast<double>(end - at);
          at = end;
        } else {
          at += sent;
        }
      }
      start = end;
    }
    queued_ = 0;
  }

  void HandUp(uint32_t slotIndex, const SourceKey& key, int i, size_t size) {
    Flush();
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::Copy(env, &rx_[static_cast<size_t>(i) * MAX_DATAGRAM], size);
    onUnknown_.MakeCallback(Value(),
                            {Napi::Number::New(env, slotIndex), Napi::String::New(env, AddressText(family_, key.addr)),
                             Napi::Number::New(env, key.port), data},
                            *context_);
  }

  double Now() {
    if (nowFn_.IsEmpty()) return WallClockMs();
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Value value = nowFn_.MakeCallback(Value(), {}, *context_);
    if (env.IsExceptionPending() || !value.IsNumber()) return now_;
    return value.As<Napi::Number>().DoubleValue();
  }

  void AllocateBuffers() {
    rx_.resize(static_cast<size_t>(BATCH) * MAX_DATAGRAM);
    msgIn_.resize(BATCH);
    iovIn_.resize(BATCH);
    from_.resize(BATCH);
    msgOut_.resize(BATCH);
    iovOut_.resize(BATCH);
    outgoing_.resize(BATCH);
  }

  // ---- control plane (JavaScript) ----

  bool Index(const Napi::CallbackInfo& info, size_t arg, uint32_t limit, uint32_t* out) {
    if (!info[arg].IsNumber()) return false;
    double value = info[arg].As<Napi::Number>().DoubleValue();
    if (!(value >= 0) || value >= limit || value != std::floor(value)) return false;
    *out = static_cast<uint32_t>(value);
    return true;
  }

  bool Grow(const Napi::CallbackInfo& info, size_t arg, uint32_t* out) {
    // Ids are dense and chosen by JavaScript; a bound keeps a wild one from growing memory.
    return Index(info, arg, 1u << 24, out);
  }

  bool Number(const Napi::CallbackInfo& info, size_t arg, double* out) {
    if (!info[arg].IsNumber()) return false;
    *out = info[arg].As<Napi::Number>().DoubleValue();
    return !std::isnan(*out);
  }

  Slot* LiveSlot(const Napi::CallbackInfo& info, size_t arg, uint32_t* index) {
    if (!Index(info, arg, static_cast<uint32_t>(slots_.size()), index)) return nullptr;
    return slots_[*index];
  }

  Napi::Value Fail(Napi::Env env, const char* message) {
    Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // An (address, port) argument pair: false for wrong types; *parsed says whether the address is
  // an IP literal (one that is not, e.g. with an IPv6 zone, is never a datagram's source).
  bool Endpoint(const Napi::CallbackInfo& info, size_t arg, uint8_t addr[16], uint16_t* port, bool* parsed) {
    if (!info[arg].IsString()) return false;
    uint32_t value;
    if (!Index(info, arg + 1, 65536, &value)) return false;
    *port = static_cast<uint16_t>(value);
    *parsed = ParseAddress(info[arg].As<Napi::String>().Utf8Value(), addr);
    return true;
  }

  // bind(address, port) -> { slot, port } | { code, error }
  Napi::Value Bind(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint8_t addr[16];
    uint16_t port;
    if (closed_) return Fail(env, "engine closed");
    bool parsed;
    if (!Endpoint(info, 0, addr, &port, &parsed) || !parsed) return Fail(env, "bind(address, port) expects an IP literal and a port");
    Napi::Object result = Napi::Object::New(env);
    const std::string address = info[0].As<Napi::String>().Utf8Value();
    auto failed = [&](int error) {
      result.Set("code", uv_err_name(-error));
      result.Set("error", std::string("bind ") + uv_err_name(-error) + " " + address + ":" + std::to_string(port));
      return result;
    };
    sockaddr_storage where;
    socklen_t length;
    if (!MakeSockaddr(family_, addr, port, &where, &length)) return failed(EAFNOSUPPORT);
    int fd = socket(family_, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return failed(errno);
    const int size = static_cast<int>(socketBufferBytes_ > 0 && socketBufferBytes_ < 2147483647 ? socketBufferBytes_ : 0);
    if (size > 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&where), length) != 0) {
      int error = errno;
      close(fd);
      return failed(error);
    }
    sockaddr_storage bound;
    socklen_t boundLength = sizeof bound;
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &boundLength);
    uint8_t ignored[16];
    uint16_t boundPort = port;
    SourceOf(bound, ignored, &boundPort);

    auto* slot = new Slot{};
    slot->engine = this;
    slot->index = static_cast<uint32_t>(slots_.size());
    slot->fd = fd;
    slot->port = boundPort;
    slot->poll.data = slot;
    int status = uv_poll_init(loop_, &slot->poll, fd);
    if (status != 0) {
      close(fd);
      delete slot;
      return failed(-status);
    }
    status = uv_poll_start(&slot->poll, UV_READABLE, OnReadable);
    if (status != 0) {
      // An initialised handle is only freed through the loop (OnClosed closes the descriptor).
      closing_++;
      ReleaseSlot(slot);
      return failed(-status);
    }
    slot->polling = true;
    slots_.push_back(slot);
    // Open sockets keep the engine alive; close() lets go once the loop closed the last one.
    if (!held_) {
      Ref();
      held_ = true;
    }
    result.Set("slot", static_cast<double>(slot->index));
    result.Set("port", static_cast<double>(boundPort));
    return result;
  }

  void ReleaseSlot(Slot* slot) {
    slot->polling = false;
    uv_poll_stop(&slot->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&slot->poll), OnClosed);
  }

  // closeSlot(slot): gives a bound socket back (the descriptor reserve); its index stays unused.
  Napi::Value CloseSlot(const Napi::CallbackInfo& info) {
    uint32_t index;
    Slot* slot = LiveSlot(info, 0, &index);
    if (slot == nullptr) return Fail(info.Env(), "closeSlot(slot): unknown slot");
    slots_[index] = nullptr;
    closing_++;
    ReleaseSlot(slot);
    return info.Env().Undefined();
  }

  // setRelay(slot, allocated, now): a relay port handed out (counters start over) or given back.
  Napi::Value SetRelay(const Napi::CallbackInfo& info) {
    uint32_t index;
    double now;
    Slot* slot = LiveSlot(info, 0, &index);
    if (slot == nullptr || !info[1].IsBoolean() || !Number(info, 2, &now)) return Fail(info.Env(), "setRelay(slot, allocated, now)");
    slot->allocated = info[1].As<Napi::Boolean>().Value();
    slot->lastActive = now;
    slot->bytes = 0;
    return info.Env().Undefined();
  }

  // setPlayer(id, createdAt): a sender's limit state, new.
  Napi::Value SetPlayer(const Napi::CallbackInfo& info) {
    uint32_t id;
    double createdAt;
    if (!Grow(info, 0, &id) || !Number(info, 1, &createdAt)) return Fail(info.Env(), "setPlayer(id, createdAt)");
    if (id >= players_.size()) players_.resize(id + 1);
    players_[id] = Player{};
    players_[id].used = true;
    players_[id].createdAt = createdAt;
    return info.Env().Undefined();
  }

  Napi::Value DeletePlayer(const Napi::CallbackInfo& info) {
    uint32_t id;
    if (!Index(info, 0, static_cast<uint32_t>(players_.size()), &id)) return Fail(info.Env(), "deletePlayer(id): unknown id");
    players_[id] = Player{};
    return info.Env().Undefined();
  }

  // setLane(id, inboundSlot, senderId, reverseId, reachAddress, reachPort): one direction of a pair.
  Napi::Value SetLane(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t id, inbound, sender, reverse;
    uint8_t addr[16];
    uint16_t port;
    bool parsed;
    if (!Grow(info, 0, &id) || LiveSlot(info, 1, &inbound) == nullptr ||
        !Index(info, 2, static_cast<uint32_t>(players_.size()), &sender) || !players_[sender].used || !Grow(info, 3, &reverse) ||
        !Endpoint(info, 4, addr, &port, &parsed)) {
      return Fail(env, "setLane(id, inboundSlot, senderId, reverseId, address, port)");
    }
    if (id >= lanes_.size()) lanes_.resize(id + 1);
    if (reverse >= lanes_.size()) lanes_.resize(reverse + 1);
    Lane& lane = lanes_[id];
    lane = Lane{};
    lane.used = true;
    lane.inbound = inbound;
    lane.sender = sender;
    lane.reverse = reverse;
    if (!parsed || !MakeSockaddr(family_, addr, port, &lane.reach, &lane.reachLength)) lane.reachLength = 0;
    return env.Undefined();
  }

  Napi::Value DeleteLane(const Napi::CallbackInfo& info) {
    uint32_t id;
    if (!Index(info, 0, static_cast<uint32_t>(lanes_.size()), &id)) return Fail(info.Env(), "deleteLane(id): unknown id");
    lanes_[id] = Lane{};
    return info.Env().Undefined();
  }

  bool UsedLane(const Napi::CallbackInfo& info, size_t arg, uint32_t* id) {
    return Index(info, arg, static_cast<uint32_t>(lanes_.size()), id) && lanes_[*id].used;
  }

  // setReach(id, address, port, hasLearned): where the lane's sender is answered.
  Napi::Value SetReach(const Napi::CallbackInfo& info) {
    uint32_t id;
    uint8_t addr[16];
    uint16_t port;
    bool parsed;
    if (!UsedLane(info, 0, &id) || !Endpoint(info, 1, addr, &port, &parsed) || !info[3].IsBoolean()) {
      return Fail(info.Env(), "setReach(laneId, address, port, hasLearned)");
    }
    Lane& lane = lanes_[id];
    if (!parsed || !MakeSockaddr(family_, addr, port, &lane.reach, &lane.reachLength)) lane.reachLength = 0;
    lane.hasLearned = info[3].As<Napi::Boolean>().Value();
    return info.Env().Undefined();
  }

  Napi::Value SetHeardAt(const Napi::CallbackInfo& info) {
    uint32_t id;
    double at;
    if (!UsedLane(info, 0, &id) || !info[1].IsNumber()) return Fail(info.Env(), "setHeardAt(laneId, time)");
    at = info[1].As<Napi::Number>().DoubleValue();
    lanes_[id].heardAt = at;
    return info.Env().Undefined();
  }

  Napi::Value HeardAt(const Napi::CallbackInfo& info) {
    uint32_t id;
    if (!UsedLane(info, 0, &id)) return Fail(info.Env(), "heardAt(laneId): unknown lane");
    return Napi::Number::New(info.Env(), lanes_[id].heardAt);
  }

  // setSource(slot, address, port, laneId, learned) / deleteSource(slot, address, port)
  Napi::Value SetSource(const Napi::CallbackInfo& info) {
    SourceKey key{};
    uint32_t lane;
    bool parsed;
    if (LiveSlot(info, 0, &key.slot) == nullptr || !Endpoint(info, 1, key.addr, &key.port, &parsed) || !UsedLane(info, 3, &lane) ||
        !info[4].IsBoolean()) {
      return Fail(info.Env(), "setSource(slot, address, port, laneId, learned)");
    }
    if (parsed) sources_[key] = Source{lane, info[4].As<Napi::Boolean>().Value()};
    return info.Env().Undefined();
  }

  Napi::Value DeleteSource(const Napi::CallbackInfo& info) {
    SourceKey key{};
    bool parsed;
    if (LiveSlot(info, 0, &key.slot) == nullptr || !Endpoint(info, 1, key.addr, &key.port, &parsed)) {
      return Fail(info.Env(), "deleteSource(slot, address, port)");
    }
    if (parsed) sources_.erase(key);
    return info.Env().Undefined();
  }

  // forwardVia(laneId, data, now): a handed-up datagram JavaScript placed on a lane.
  Napi::Value ForwardVia(const Napi::CallbackInfo& info) {
    uint32_t id;
    double now;
    if (!UsedLane(info, 0, &id) || !info[1].IsBuffer() || !Number(info, 2, &now)) return Fail(info.Env(), "forwardVia(laneId, buffer, now)");
    if (!Complete(id)) return Fail(info.Env(), "forwardVia: lane is not complete");
    auto data = info[1].As<Napi::Buffer<uint8_t>>();
    Forward(id, data.Data(), data.Length(), now, false);
    return info.Env().Undefined();
  }

  // counters() -> Float64Array [packets, bytes, ...drops by reason]
  Napi::Value Counters(const Napi::CallbackInfo& info) {
    auto out = Napi::Float64Array::New(info.Env(), 2 + DROP_COUNT);
    out[0] = packets_;
    out[1] = bytes_;
    for (int i = 0; i < DROP_COUNT; i++) out[2 + i] = drops_[i];
    return out;
  }

  // relayCounters() -> Float64Array [lastActive, bytes] per slot (NaN for closed slots)
  Napi::Value RelayCounters(const Napi::CallbackInfo& info) {
    auto out = Napi::Float64Array::New(info.Env(), slots_.size() * 2);
    for (size_t i = 0; i < slots_.size(); i++) {
      const Slot* slot = slots_[i];
      out[i * 2] = slot ? slot->lastActive : NAN;
      out[i * 2 + 1] = slot ? slot->bytes : NAN;
    }
    return out;
  }

  // close(callback): every socket closed and every table freed; callback once the loop let go.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsFunction()) return Fail(env, "close(callback)");
    if (closed_) return Fail(env, "engine already closed");
    closed_ = true;
    closeCallback_ = Napi::Persistent(info[0].As<Napi::Function>());
    for (Slot*& slot : slots_) {
      if (slot == nullptr) continue;
      closing_++;
      ReleaseSlot(slot);
      slot = nullptr;
    }
    slots_.clear();
    slots_.shrink_to_fit();
    sources_.clear();
    std::unordered_map<SourceKey, Source, SourceKeyHash>().swap(sources_);
    std::vector<Lane>().swap(lanes_);
    std::vector<Player>().swap(players_);
    std::vector<uint8_t>().swap(rx_);
    if (closing_ == 0) FinishClose();
    return env.Undefined();
  }

  void FinishClose() {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::FunctionReference callback = std::move(closeCallback_);
    onUnknown_.Reset();
    nowFn_.Reset();
    callback.MakeCallback(env.Global(), {}, *context_);
    if (held_) {
      held_ = false;
      Unref();
    }
  }

  uv_loop_t* loop_ = nullptr;
  int family_ = AF_INET;
  double socketBufferBytes_ = 0;
  double bytesPerSlice_ = 0;
  double sliceMs_ = 0;
  double maxLifetimeMs_ = 0;
  double maxLifetimeBytes_ = 0;
  double globalBytesPerSlice_ = 0;
  double globalSliceEnd_ = 0;
  double globalSliceBytes_ = 0;
  double packets_ = 0;
  double bytes_ = 0;
  double drops_[DROP_COUNT] = {0};
  double now_ = 0;
  bool closed_ = false;
  bool held_ = false;
  int closing_ = 0;
  std::vector<Slot*> slots_;
  std::vector<Player> players_;
  std::vector<Lane> lanes_;
  std::unordered_map<SourceKey, Source, SourceKeyHash> sources_;
  Napi::FunctionReference onUnknown_;
  Napi::FunctionReference nowFn_;
  Napi::FunctionReference closeCallback_;
  std::unique_ptr<Napi::AsyncContext> context_;
  std::vector<uint8_t> rx_;
  std::vector<mmsghdr> msgIn_;
  std::vector<iovec> iovIn_;
  std::vector<sockaddr_storage> from_;
  std::vector<mmsghdr> msgOut_;
  std::vector<iovec> iovOut_;
  std::vector<Outgoing> outgoing_;
  int queued_ = 0;
};

void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  auto* slot = static_cast<Slot*>(handle->data);
  if (status < 0 || slot->engine == nullptr || !slot->polling) return;
  slot->engine->Drain(slot);
}

void OnClosed(uv_handle_t* handle) {
  auto* slot = static_cast<Slot*>(handle->data);
  close(slot->fd);
  if (slot->engine == nullptr) {
    delete slot;
    return;
  }
  slot->engine->HandleClosed(slot);
}

}  // namespace

Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return Engine::Init(env, exports); }

NODE_API_MODULE(noray_relay_engine, InitAll)
