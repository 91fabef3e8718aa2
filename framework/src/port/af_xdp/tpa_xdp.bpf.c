// tpa's XDP program: software flow bifurcation for the AF_XDP port.
//
// Frames of tpa's flows go to the AF_XDP socket of the queue they arrived
// on; every other frame goes to the kernel unchanged (XDP_PASS). A frame is
// tpa's when it is, to one of tpa's addresses (`addrs4`, `addrs6`):
//   - TCP or UDP whose destination port tpa listens on (`ports`) or lies in
//     tpa's active-open local port range (`config`);
//   - an ICMP/ICMPv6 error whose quoted packet was sent by tpa (inner
//     source address tpa's, inner source port as above): PMTU and
//     unreachables for tpa's connections;
//   - a non-first IP fragment of a datagram whose first fragment was
//     tpa's (remembered in `frags`, an LRU map; a fragment that overtakes
//     its first goes to the kernel).
// Malformed frames of tpa's flows (bad lengths, checksums) are redirected
// all the same: tpa drops and counts them. Counters are per CPU (`stats`).
//
// Built by framework/build.rs with clang -target bpf; loaded by aya.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Indices of `stats`; keep in step with `XdpCounters` in program.rs.
#define STAT_REDIRECTED 0
#define STAT_REDIRECTED_ICMP 1
#define STAT_REDIRECTED_FRAGMENT 2
#define STAT_PASSED 3
#define STAT_NO_SOCKET 4
#define STAT_COUNT 5

// Bits of a `ports` entry.
#define PORT_TCP 1
#define PORT_UDP 2

struct port_range {
	__u16 first; // host order; 0 with last 0: no range
	__u16 last;
};

struct addr6 {
	__u32 a[4];
};

struct frag_key {
	__u32 src[4];
	__u32 dst[4];
	__u32 id;
	__u8 family;
	__u8 proto;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32); // network order
	__type(value, __u8);
} addrs4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct addr6);
	__type(value, __u8);
} addrs6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32); // port, host order
	__type(value, __u8); // PORT_TCP | PORT_UDP
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct port_range);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct frag_key);
	__type(value, __u8);
} frags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&stats, &which);
	if (c)
		*c += 1;
}

static __always_inline int pass(void)
{
	count(STAT_PASSED);
	return XDP_PASS;
}

static __always_inline int to_tpa(struct xdp_md *ctx, __u32 why)
{
	// A queue without a socket: the frame is tpa's, so the kernel must not
	// see it (it would answer with a reset); dropped and counted.
	if (bpf_redirect_map(&xsks, ctx->rx_queue_index, 0) != XDP_REDIRECT) {
		count(STAT_NO_SOCKET);
		return XDP_DROP;
	}
	count(why);
	return XDP_REDIRECT;
}

// Whether `port` (network order) of protocol `proto` is tpa's.
static __always_inline int port_is_tpas(__u8 proto, __u16 port_be)
{
	__u32 port = bpf_ntohs(port_be);
	__u8 bit = proto == IPPROTO_TCP ? PORT_TCP : proto == IPPROTO_UDP ? PORT_UDP : 0;
	if (!bit)
		return 0;
	__u8 *p = bpf_map_lookup_elem(&ports, &port);
	if (p && (*p & bit))
		return 1;
	__u32 zero = 0;
	struct port_range *r = bpf_map_lookup_elem(&config, &zero);
	return r && r->first != 0 && port >= r->first && port <= r->last;
}

static __always_inline int addr4_is_tpas(__u32 addr)
{
	return bpf_map_lookup_elem(&addrs4, &addr) != 0;
}

static __always_inline int addr6_is_tpas(const __u32 *addr)
{
	struct addr6 key = { { addr[0], addr[1], addr[2], addr[3] } };
	return bpf_map_lookup_elem(&addrs6, &key) != 0;
}

// IPv4 header fields read by offset (no struct iphdr: one header less).
#define IP4_LEN 20

static __always_inline int ipv4(struct xdp_md *ctx, __u8 *ip, void *end)
{
	if ((void *)(ip + IP4_LEN) > end)
		return pass();
	if ((ip[0] >> 4) != 4)
		return pass();
	__u32 daddr = *(__u32 *)(ip + 16);
	if (!addr4_is_tpas(daddr))
		return pass();
	__u32 ihl = (ip[0] & 0xf) * 4;
	if (ihl < IP4_LEN)
		return pass();
	__u8 proto = ip[9];
	__u16 frag = bpf_ntohs(*(__u16 *)(ip + 6));
	struct frag_key key = {};
	key.src[0] = *(__u32 *)(ip + 12);
	key.dst[0] = daddr;
	key.id = *(__u16 *)(ip + 4);
	key.family = 4;
	key.proto = proto;
	if (frag & 0x1fff) {
		// A later fragment: tpa's if its first one was.
		if (bpf_map_lookup_elem(&frags, &key))
			return to_tpa(ctx, STAT_REDIRECTED_FRAGMENT);
		return pass();
	}
	__u8 *l4 = ip + ihl;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		if ((void *)(l4 + 4) > end)
			return pass();
		if (!port_is_tpas(proto, *(__u16 *)(l4 + 2)))
			return pass();
		if (frag & 0x2000) {
			__u8 one = 1;
			bpf_map_update_elem(&frags, &key, &one, BPF_ANY);
		}
		return to_tpa(ctx, STAT_REDIRECTED);
	}
	if (proto == IPPROTO_ICMP) {
		// type, code, checksum, 4 unused/MTU bytes, then the quoted header.
		__u8 *inner = l4 + 8;
		if ((void *)(inner + IP4_LEN) > end)
			return pass();
		__u8 type = l4[0];
		if (type != 3 && type != 11 && type != 12)
			return pass();
		__u32 inner_ihl = (inner[0] & 0xf) * 4;
		if (inner_ihl < IP4_LEN || inner_ihl > 60)
			return pass();
		__u8 inner_proto = inner[9];
		if (!addr4_is_tpas(*(__u32 *)(inner + 12)))
			return pass();
		__u8 *inner_l4 = inner + inner_ihl;
		if ((void *)(inner_l4 + 4) > end)
			return pass();
		if (!port_is_tpas(inner_proto, *(__u16 *)inner_l4))
			return pass();
		return to_tpa(ctx, STAT_REDIRECTED_ICMP);
	}
	return pass();
}

#define IP6_LEN 40
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_ICMPV6 58

static __always_inline int ipv6(struct xdp_md *ctx, __u8 *ip, void *end)
{
	if ((void *)(ip + IP6_LEN) > end)
		return pass();
	if ((ip[0] >> 4) != 6)
		return pass();
	__u32 *daddr = (__u32 *)(ip + 24);
	if (!addr6_is_tpas(daddr))
		return pass();
	__u8 proto = ip[6];
	__u8 *l4 = ip + IP6_LEN;
	int more_fragments = 0;
	struct frag_key key = {};
	if (proto == NEXTHDR_FRAGMENT) {
		// next header, reserved, offset (13 bits) | res | M, id
		if ((void *)(l4 + 8) > end)
			return pass();
		__u16 off = bpf_ntohs(*(__u16 *)(l4 + 2));
		__u32 *saddr = (__u32 *)(ip + 8);
		key.src[0] = saddr[0];
		key.src[1] = saddr[1];
		key.src[2] = saddr[2];
		key.src[3] = saddr[3];
		key.dst[0] = daddr[0];
		key.dst[1] = daddr[1];
		key.dst[2] = daddr[2];
		key.dst[3] = daddr[3];
		key.id = *(__u32 *)(l4 + 4);
		key.family = 6;
		proto = l4[0];
		key.proto = proto;
		if (off & 0xfff8) {
			if (bpf_map_lookup_elem(&frags, &key))
				return to_tpa(ctx, STAT_REDIRECTED_FRAGMENT);
			return pass();
		}
		more_fragments = off & 1;
		l4 += 8;
	}
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		if ((void *)(l4 + 4) > end)
			return pass();
		if (!port_is_tpas(proto, *(__u16 *)(l4 + 2)))
			return pass();
		if (more_fragments) {
			__u8 one = 1;
			bpf_map_update_elem(&frags, &key, &one, BPF_ANY);
		}
		return to_tpa(ctx, STAT_REDIRECTED);
	}
	if (proto == NEXTHDR_ICMPV6) {
		__u8 *inner = l4 + 8;
		if ((void *)(inner + IP6_LEN + 4) > end)
			return pass();
		// Errors are types 1 to 4 (unreachable, too big, time exceeded,
		// parameter problem); neighbour discovery and echo stay the kernel's.
		__u8 type = l4[0];
		if (type < 1 || type > 4)
			return pass();
		if (!addr6_is_tpas((__u32 *)(inner + 8)))
			return pass();
		if (!port_is_tpas(inner[6], *(__u16 *)(inner + IP6_LEN)))
			return pass();
		return to_tpa(ctx, STAT_REDIRECTED_ICMP);
	}
	return pass();
}

SEC("xdp")
int tpa_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *eth = data;
	if ((void *)(eth + ETH_HLEN) > end)
		return pass();
	__u16 proto = *(__u16 *)(eth + 12);
	if (proto == bpf_htons(ETH_P_IP))
		return ipv4(ctx, eth + ETH_HLEN, end);
	if (proto == bpf_htons(ETH_P_IPV6))
		return ipv6(ctx, eth + ETH_HLEN, end);
	// ARP, VLAN-tagged frames and everything else: the kernel's.
	return pass();
}

// No GPL-only helper is used: the project's own licence.
char LICENSE[] SEC("license") = "Apache-2.0";
