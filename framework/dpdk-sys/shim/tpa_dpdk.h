/* The DPDK headers tpa binds to, and the shim exporting DPDK's static-inline
 * fast-path functions as real symbols (prefix tpa_). */
#ifndef TPA_DPDK_H
#define TPA_DPDK_H

#include <rte_config.h>
#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_memory.h>
#include <rte_dev.h>
#include <rte_bus_vdev.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>
#include <rte_flow.h>
#include <rte_ring.h>
#include <rte_eth_ring.h>
#include <rte_thash.h>

/* ---- errors ---- */
int tpa_rte_errno(void);

/* ---- lcore / clock ---- */
unsigned tpa_rte_lcore_id(void);
uint64_t tpa_rte_rdtsc(void);
uint64_t tpa_rte_get_tsc_hz(void);

/* ---- ethdev fast path ---- */
uint16_t tpa_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                              struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t tpa_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                              struct rte_mbuf **tx_pkts, uint16_t nb_pkts);
/* rte_eth_tx_prepare: how many packets from the front the PMD takes as they
 * are (their offload fields checked, headers fixed up where it needs); for
 * the first refused one, *error is rte_errno. */
uint16_t tpa_rte_eth_tx_prepare(uint16_t port_id, uint16_t queue_id,
                                struct rte_mbuf **tx_pkts, uint16_t nb_pkts,
                                int *error);

/* ---- mbuf ---- */
struct rte_mbuf *tpa_rte_pktmbuf_alloc(struct rte_mempool *mp);
int tpa_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                               unsigned count);
void tpa_rte_pktmbuf_free(struct rte_mbuf *m);
char *tpa_rte_pktmbuf_mtod(struct rte_mbuf *m);
char *tpa_rte_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *tpa_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *tpa_rte_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int tpa_rte_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t tpa_rte_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t tpa_rte_pktmbuf_tailroom(const struct rte_mbuf *m);
void *tpa_rte_mbuf_to_priv(struct rte_mbuf *m);
uint16_t tpa_rte_pktmbuf_priv_size(struct rte_mempool *mp);
uint16_t tpa_rte_pktmbuf_data_room_size(struct rte_mempool *mp);

/* Receive metadata: the RSS hash and the flow-director/MARK id. */
uint32_t tpa_mbuf_rss_hash(const struct rte_mbuf *m);
uint32_t tpa_mbuf_fdir_id(const struct rte_mbuf *m);
/* Transmit offload lengths (l2/l3/l4 header lengths and TSO segment size). */
void tpa_mbuf_set_tx_offload(struct rte_mbuf *m, uint16_t l2_len, uint16_t l3_len,
                             uint16_t l4_len, uint16_t tso_segsz);

/* External buffers: attach `len` bytes at `addr` (IO address `iova`) to `m`,
 * with `shinfo` (owned by the caller, alive until `free_cb` runs) set to
 * call `free_cb(addr, opaque)` when the last reference goes. */
void tpa_rte_pktmbuf_attach_extbuf(struct rte_mbuf *m, void *addr, rte_iova_t iova,
                                   uint16_t len,
                                   struct rte_mbuf_ext_shared_info *shinfo,
                                   rte_mbuf_extbuf_free_callback_t free_cb,
                                   void *opaque);

/* ---- software checksums (fallback when the device has no offload) ---- */
uint16_t tpa_rte_ipv4_cksum(const struct rte_ipv4_hdr *ipv4_hdr);
uint16_t tpa_rte_ipv4_phdr_cksum(const struct rte_ipv4_hdr *ipv4_hdr, uint64_t ol_flags);
uint16_t tpa_rte_ipv4_udptcp_cksum_mbuf(const struct rte_mbuf *m,
                                        const struct rte_ipv4_hdr *ipv4_hdr,
                                        uint16_t l4_off);

/* ---- mempool ---- */
unsigned tpa_rte_mempool_size(const struct rte_mempool *mp);
/* Free objects this thread can take: the pool's common store plus this
 * lcore's cache (other lcores' caches are out of its reach). */
unsigned tpa_mempool_free_here(struct rte_mempool *mp);
/* rte_pktmbuf_alloc unless no more than `reserve` objects are free here
 * (tpa_mempool_free_here): NULL then, leaving them to the receive path. */
struct rte_mbuf *tpa_pktmbuf_alloc_above(struct rte_mempool *mp, unsigned reserve);
/* rte_pktmbuf_alloc_bulk of `count` if more than `reserve` + `count` - 1
 * objects are free here, else -ENOENT without taking any. */
int tpa_pktmbuf_alloc_bulk_above(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                 unsigned count, unsigned reserve);

/* ---- steering ---- */
/* DPDK's software Toeplitz over `n_words` host-order 32-bit words of the
 * tuple (addresses, then source and destination port in one word). */
uint32_t tpa_rte_softrss(const uint32_t *words, uint32_t n_words, const uint8_t *key);

#endif
