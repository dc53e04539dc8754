/*
 * Reference only: a native UDP forwarder with the relay's addressing (per pair FA/FB; FB -> B from
 * FA, FA -> A from FB), batching with recvmmsg/sendmmsg over epoll. Shows what a Node relay gives
 * up to native code. Usage: forwarder A_PORT:B_PORT ... ; prints "FA_PORT:FB_PORT ..." then runs
 * until stdin closes or it is killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define MAXSOCK 4096

static int peer_sock[MAXSOCK * 2 + 16];
static struct sockaddr_in peer_addr[MAXSOCK * 2 + 16];

static int bind_one(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int size = 4 * 1024 * 1024;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("bind"); exit(1); }
  return fd;
}

static int port_of(int fd) {
  struct sockaddr_in a; socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  return ntohs(a.sin_port);
}

int main(int argc, char **argv) {
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = 0};
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
  for (int i = 1; i < argc && i <= MAXSOCK; i++) {
    int a_port, b_port;
    if (sscanf(argv[i], "%d:%d", &a_port, &b_port) != 2) return 2;
    int fa = bind_one(), fb = bind_one();
    struct sockaddr_in to = {.sin_family = AF_INET};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(b_port); peer_sock[fb] = fa; peer_addr[fb] = to;  /* FB -> B from FA */
    to.sin_port = htons(a_port); peer_sock[fa] = fb; peer_addr[fa] = to;  /* FA -> A from FB */
    ev.data.fd = fa; epoll_ctl(ep, EPOLL_CTL_ADD, fa, &ev);
    ev.data.fd = fb; epoll_ctl(ep, EPOLL_CTL_ADD, fb, &ev);
    printf("%s%d:%d", i > 1 ? " " : "", port_of(fa), port_of(fb));
  }
  printf("\n"); fflush(stdout);
  static char bufs[BATCH][2048];
  struct mmsghdr msgs[BATCH]; struct iovec iov[BATCH];
  struct epoll_event events[64];
  for (;;) {
    int n = epoll_wait(ep, events, 64, -1);
    for (int e = 0; e < n; e++) {
      int fd = events[e].data.fd;
      if (fd == 0) { char c[64]; if (read(0, c, sizeof c) <= 0) return 0; continue; }
      for (;;) {
        for (int i = 0; i < BATCH; i++) {
          iov[i].iov_base = bufs[i]; iov[i].iov_len = sizeof bufs[i];
          memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
          msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int got = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0) break;
        for (int i = 0; i < got; i++) {
          iov[i].iov_len = msgs[i].msg_len;
          msgs[i].msg_hdr.msg_name = &peer_addr[fd]; msgs[i].msg_hdr.msg_namelen = sizeof peer_addr[fd];
        }
        sendmmsg(peer_sock[fd], msgs, got, 0);
        if (got < BATCH) break;
      }
    }
  }
}
