/* Real symbols for DPDK's static-inline fast-path functions, so Rust can
 * call them. Each is a one-line forward, except the few that combine two
 * calls (the mempool receive reserve). */
/* rte_ipv4_udptcp_cksum_mbuf is still marked experimental in 22.11. */
#define ALLOW_EXPERIMENTAL_API 1
#include "tpa_dpdk.h"

int tpa_rte_errno(void) { return rte_errno; }

unsigned tpa_rte_lcore_id(void) { return rte_lcore_id(); }
uint64_t tpa_rte_rdtsc(void) { return rte_rdtsc(); }
uint64_t tpa_rte_get_tsc_hz(void) { return rte_get_tsc_hz(); }

uint16_t tpa_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                              struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t tpa_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                              struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

uint16_t tpa_rte_eth_tx_prepare(uint16_t port_id, uint16_t queue_id,
                                struct rte_mbuf **tx_pkts, uint16_t nb_pkts,
                                int *error)
{
	uint16_t ok = rte_eth_tx_prepare(port_id, queue_id, tx_pkts, nb_pkts);
	*error = ok < nb_pkts ? rte_errno : 0;
	return ok;
}

struct rte_mbuf *tpa_rte_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }

int tpa_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void tpa_rte_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
char *tpa_rte_pktmbuf_mtod(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, char *); }
char *tpa_rte_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *tpa_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *tpa_rte_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int tpa_rte_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
uint16_t tpa_rte_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t tpa_rte_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
void *tpa_rte_mbuf_to_priv(struct rte_mbuf *m) { return rte_mbuf_to_priv(m); }
uint16_t tpa_rte_pktmbuf_priv_size(struct rte_mempool *mp) { return rte_pktmbuf_priv_size(mp); }
uint16_t tpa_rte_pktmbuf_data_room_size(struct rte_mempool *mp) { return rte_pktmbuf_data_room_size(mp); }

uint32_t tpa_mbuf_rss_hash(const struct rte_mbuf *m) { return m->hash.rss; }
uint32_t tpa_mbuf_fdir_id(const struct rte_mbuf *m) { return m->hash.fdir.hi; }

void tpa_mbuf_set_tx_offload(struct rte_mbuf *m, uint16_t l2_len, uint16_t l3_len,
                             uint16_t l4_len, uint16_t tso_segsz)
{
	m->l2_len = l2_len;
	m->l3_len = l3_len;
	m->l4_len = l4_len;
	m->tso_segsz = tso_segsz;
}

void tpa_rte_pktmbuf_attach_extbuf(struct rte_mbuf *m, void *addr, rte_iova_t iova,
                                   uint16_t len,
                                   struct rte_mbuf_ext_shared_info *shinfo,
                                   rte_mbuf_extbuf_free_callback_t free_cb,
                                   void *opaque)
{
	shinfo->free_cb = free_cb;
	shinfo->fcb_opaque = opaque;
	rte_mbuf_ext_refcnt_set(shinfo, 1);
	rte_pktmbuf_attach_extbuf(m, addr, iova, len, shinfo);
}

uint16_t tpa_rte_ipv4_cksum(const struct rte_ipv4_hdr *ipv4_hdr) { return rte_ipv4_cksum(ipv4_hdr); }

uint16_t tpa_rte_ipv4_phdr_cksum(const struct rte_ipv4_hdr *ipv4_hdr, uint64_t ol_flags)
{
	return rte_ipv4_phdr_cksum(ipv4_hdr, ol_flags);
}

uint16_t tpa_rte_ipv4_udptcp_cksum_mbuf(const struct rte_mbuf *m,
                                        const struct rte_ipv4_hdr *ipv4_hdr,
                                        uint16_t l4_off)
{
	return rte_ipv4_udptcp_cksum_mbuf(m, ipv4_hdr, l4_off);
}

unsigned tpa_rte_mempool_size(const struct rte_mempool *mp) { return mp->size; }

unsigned tpa_mempool_free_here(struct rte_mempool *mp)
{
	/* rte_mempool_ops_get_count, which 22.11 does not export. */
	unsigned n = rte_mempool_get_ops(mp->ops_index)->get_count(mp);
	struct rte_mempool_cache *cache = rte_mempool_default_cache(mp, rte_lcore_id());
	if (cache != NULL)
		n += cache->len;
	return n;
}

struct rte_mbuf *tpa_pktmbuf_alloc_above(struct rte_mempool *mp, unsigned reserve)
{
	if (tpa_mempool_free_here(mp) <= reserve)
		return NULL;
	return rte_pktmbuf_alloc(mp);
}

int tpa_pktmbuf_alloc_bulk_above(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                 unsigned count, unsigned reserve)
{
	if (tpa_mempool_free_here(mp) < reserve + count)
		return -ENOENT;
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

/* ---- steering: the device's RSS setup and DPDK's software Toeplitz ---- */

uint32_t tpa_rte_softrss(const uint32_t *words, uint32_t n_words, const uint8_t *key)
{
	return rte_softrss((uint32_t *)words, n_words, key);
}
