/*
 * Server selection. Every pick is lock-free and allocation-free: the only
 * shared state written on the hot path is the backend's atomic cursor, and
 * the source ring is read-only once built.
 *
 * A server with weight 0 takes no new connections from balance_pick (it
 * drains, as in HAProxy); balance_next still offers it as a failover.
 */
#include "balance.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Ring points per unit of weight: 160 (as ketama) keeps shares within ~15%. */
#define RING_POINTS_PER_WEIGHT 160
/* Upper bound on ring size (8 MB); heavy weights get fewer points per unit. */
#define RING_MAX_POINTS (1u << 20)

#define FNV32_OFFSET 2166136261u
#define FNV32_PRIME  16777619u

/* Per-thread PRNG state for BALANCE_RANDOM; 0 means not seeded yet. */
static _Thread_local uint64_t rng_state;

/* A usable server: up and below its connection limit. */
int balance_server_usable(const struct server *s)
{
    unsigned max = s->max_connections;

    if (atomic_load_explicit(&s->down, memory_order_relaxed))
        return 0;
    return max == 0 || atomic_load_explicit(&s->active, memory_order_relaxed) < max;
}

/* A server balance_pick may choose: usable and with a share to take. */
static bool server_pickable(const struct server *s)
{
    return s->weight > 0 && balance_server_usable(s);
}

/* Sum of the weights of the pickable servers; 0 when none is. */
static uint64_t pickable_weight(const struct backend *b)
{
    uint64_t w = 0;

    for (size_t i = 0; i < b->nservers; i++)
        if (server_pickable(&b->servers[i]))
            w += b->servers[i].weight;
    return w;
}

/*
 * The pickable server whose slice of [0, total pickable weight) holds pos,
 * slices laid out in index order. Servers may change state between the
 * caller's sum and this walk: then the last pickable server seen answers,
 * or NULL if none is left.
 */
static struct server *weighted_at(struct backend *b, uint64_t pos)
{
    struct server *last = NULL;

    for (size_t i = 0; i < b->nservers; i++) {
        struct server *s = &b->servers[i];
        if (!server_pickable(s))
            continue;
        if (pos < s->weight)
            return s;
        pos -= s->weight;
        last = s;
    }
    return last;
}

/* (a * b) mod m without overflow; m > 0. */
static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t m)
{
    return (uint64_t)(((unsigned __int128)a * b) % m);
}

/* Greatest common divisor. */
static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/*
 * A step coprime with w near w/phi. Walking k * step mod w visits every
 * position of [0, w) once per cycle (so each server gets exactly its weight),
 * and the golden-ratio step spreads a server's consecutive slots evenly
 * instead of sending its whole weight in a burst.
 */
static uint64_t golden_step(uint64_t w)
{
    uint64_t step = (uint64_t)(((unsigned __int128)w * 0x9E3779B97F4A7C15ull) >> 64);

    if (step == 0)
        step = 1;
    while (gcd(step, w) != 1)
        step = step + 1 < w ? step + 1 : 1;
    return step;
}

/*
 * Weighted round robin over the servers pickable right now. The atomic
 * cursor numbers picks across all threads; pick n takes slot
 * (n mod W) * step mod W. Over any W consecutive picks with a stable server
 * set each server gets exactly its weight. (The 32-bit cursor wrapping
 * shifts the cycle once every 2^32 picks.)
 */
static struct server *pick_roundrobin(struct backend *b)
{
    uint64_t w = pickable_weight(b);

    if (w == 0)
        return NULL;
    uint64_t n = atomic_fetch_add_explicit(&b->rr_next, 1, memory_order_relaxed);
    return weighted_at(b, mulmod(n % w, golden_step(w), w));
}

/*
 * Least connections relative to weight: the smallest (active + 1) / weight,
 * i.e. the load after this connection, so weights hold under load. The scan
 * starts at a rotating offset so equally loaded servers take turns.
 */
static struct server *pick_leastconn(struct backend *b)
{
    size_t start = atomic_fetch_add_explicit(&b->rr_next, 1, memory_order_relaxed) % b->nservers;
    struct server *best = NULL;
    uint64_t best_load = 0, best_weight = 1;

    for (size_t i = 0; i < b->nservers; i++) {
        struct server *s = &b->servers[(start + i) % b->nservers];
        if (!server_pickable(s))
            continue;
        uint64_t load = (uint64_t)atomic_load_explicit(&s->active, memory_order_relaxed) + 1;
        /* load / weight < best_load / best_weight, in integers */
        if (best == NULL || load * best_weight < best_load * s->weight) {
            best = s;
            best_load = load;
            best_weight = s->weight;
        }
    }
    return best;
}

/* murmur3's 32-bit finaliser: every input bit flips about half the output. */
static uint32_t fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* FNV-1a over len bytes, continuing from h. */
static uint32_t fnv1a(uint32_t h, const void *data, size_t len)
{
    const uint8_t *p = data;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV32_PRIME;
    }
    return h;
}

/*
 * Ring position of virtual point `replica` of the server named name. It
 * depends only on the name, so adding or removing other servers leaves
 * this server's points where they were.
 */
static uint32_t ring_point_hash(const char *name, uint32_t replica)
{
    uint8_t r[4] = {(uint8_t)replica, (uint8_t)(replica >> 8), (uint8_t)(replica >> 16),
                    (uint8_t)(replica >> 24)};
    uint32_t h = fnv1a(FNV32_OFFSET, name ? name : "", name ? strlen(name) : 0);

    h = fnv1a(h, "#", 1);
    return fmix32(fnv1a(h, r, sizeof(r)));
}

/*
 * Hash of the client's IP address, port excluded. An IPv4-mapped IPv6
 * address hashes as the IPv4 address, so a client keeps its server whether
 * it reaches a dual-stack or an IPv4 listener. Other families hash to a
 * constant.
 */
static uint32_t client_hash(const struct sockaddr *sa)
{
    uint32_t h = FNV32_OFFSET;

    if (sa != NULL && sa->sa_family == AF_INET) {
        h = fnv1a(h, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            h = fnv1a(h, &a->s6_addr[12], 4);
        else
            h = fnv1a(h, a, 16);
    }
    return fmix32(h);
}

/* Index of the first ring point at or after h, wrapping to 0. */
static size_t ring_find(const struct backend *b, uint32_t h)
{
    size_t lo = 0, hi = b->nring;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->ring[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == b->nring ? 0 : lo;
}

/*
 * Consistent hashing on the client address: the owner of the first ring
 * point clockwise from the client's hash, walking on past points of servers
 * that are not pickable, so only a down server's clients move. Without a
 * ring (balance_build not run) it falls back to a plain weighted hash.
 */
static struct server *pick_source(struct backend *b, const struct sockaddr *client)
{
    uint32_t h = client_hash(client);
    uint64_t w = pickable_weight(b);

    if (w == 0)
        return NULL;
    if (b->ring == NULL || b->nring == 0)
        return weighted_at(b, h % w);
    size_t start = ring_find(b, h);
    for (size_t i = 0; i < b->nring; i++) {
        const struct hash_ring_point *p = &b->ring[(start + i) % b->nring];
        struct server *s = &b->servers[p->server];
        if (server_pickable(s))
            return s;
    }
    return NULL;
}

/*
 * Seeds this thread's generator from getrandom, or failing that from the
 * clock and the state's (per-thread) address. Never leaves it 0, the
 * xorshift fixed point.
 */
static void rng_seed(void)
{
    uint64_t seed = 0;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uintptr_t)&rng_state;
    }
    rng_state = seed != 0 ? seed : 0x9E3779B97F4A7C15ull;
}

/* Next 64 bits of this thread's xorshift64* stream. */
static uint64_t rng_next(void)
{
    uint64_t x;

    if (rng_state == 0)
        rng_seed();
    x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Weighted random over the pickable servers, per-thread generator. */
static struct server *pick_random(struct backend *b)
{
    uint64_t w = pickable_weight(b);

    if (w == 0)
        return NULL;
    /* multiply-shift maps 64 random bits onto [0, w) without modulo bias worth noting */
    return weighted_at(b, (uint64_t)(((unsigned __int128)rng_next() * w) >> 64));
}

/* Picks a server for a new connection; see balance.h. */
struct server *balance_pick(struct backend *b, const struct sockaddr *client)
{
    if (b == NULL || b->nservers == 0)
        return NULL;
    switch (b->balance) {
    case BALANCE_LEASTCONN:
        return pick_leastconn(b);
    case BALANCE_SOURCE:
        return pick_source(b, client);
    case BALANCE_RANDOM:
        return pick_random(b);
    case BALANCE_ROUNDROBIN:
    default:
        return pick_roundrobin(b);
    }
}

/* The next usable server after prev in index order, wrapping; see balance.h. */
struct server *balance_next(struct backend *b, const struct server *prev)
{
    size_t first;

    if (b == NULL || b->nservers == 0)
        return NULL;
    if (prev != NULL && prev->index >= b->nservers)
        return NULL;
    first = prev != NULL ? prev->index + 1 : 0;
    for (size_t i = 0; i < b->nservers; i++) {
        struct server *s = &b->servers[(first + i) % b->nservers];
        if (s != prev && balance_server_usable(s))
            return s;
    }
    return NULL;
}

/* One atomic compare-and-swap loop: never past max_connections; see balance.h. */
bool balance_take(struct server *srv)
{
    unsigned max = srv->max_connections;
    unsigned cur = atomic_load_explicit(&srv->active, memory_order_relaxed);

    do {
        if (max != 0 && cur >= max)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&srv->active, &cur, cur + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    return true;
}

/* A pick with its slot taken; see balance.h. */
struct server *balance_pick_take(struct backend *b, const struct sockaddr *client)
{
    /* Each lost race means another connection got a slot: a few rounds suffice. */
    for (size_t round = 0; b != NULL && round <= b->nservers; round++) {
        struct server *srv = balance_pick(b, client);

        if (srv == NULL || balance_take(srv))
            return srv;
    }
    return NULL;
}

/* Some server is up, takes new connections, and is full; see balance.h. */
bool balance_saturated(const struct backend *b)
{
    for (size_t i = 0; b != NULL && i < b->nservers; i++) {
        const struct server *s = &b->servers[i];
        unsigned max = s->max_connections;

        if (s->weight > 0 && max != 0 && !atomic_load_explicit(&s->down, memory_order_relaxed) &&
            atomic_load_explicit(&s->active, memory_order_relaxed) >= max)
            return true;
    }
    return false;
}

/* Ring order: by hash, ties by server name so the order ignores indexes. */
static int ring_cmp(const void *a, const void *c, void *arg)
{
    const struct hash_ring_point *pa = a, *pc = c;
    const struct backend *b = arg;

    if (pa->hash != pc->hash)
        return pa->hash < pc->hash ? -1 : 1;
    const char *na = b->servers[pa->server].name, *nc = b->servers[pc->server].name;
    int r = strcmp(na ? na : "", nc ? nc : "");
    if (r != 0)
        return r;
    return pa->server < pc->server ? -1 : pa->server > pc->server;
}

/*
 * Builds the consistent-hash ring: RING_POINTS_PER_WEIGHT points per unit
 * of weight (fewer if the total would pass RING_MAX_POINTS), sorted.
 */
static int ring_build(struct backend *b)
{
    uint64_t total = 0, per = RING_POINTS_PER_WEIGHT;
    size_t n = 0;

    for (size_t i = 0; i < b->nservers; i++)
        total += b->servers[i].weight;
    if (total == 0)
        return 0;
    if (total * per > RING_MAX_POINTS)
        per = total < RING_MAX_POINTS ? RING_MAX_POINTS / total : 1;
    if (total * per > SIZE_MAX / sizeof(*b->ring) || total * per > UINT32_MAX) {
        errno = EINVAL;
        return -1;
    }
    b->ring = calloc((size_t)(total * per), sizeof(*b->ring));
    if (b->ring == NULL)
        return -1;
    for (size_t i = 0; i < b->nservers; i++) {
        uint32_t points = (uint32_t)(b->servers[i].weight * per);
        for (uint32_t r = 0; r < points; r++)
            b->ring[n++] =
                (struct hash_ring_point){ring_point_hash(b->servers[i].name, r), (uint32_t)i};
    }
    b->nring = n;
    qsort_r(b->ring, b->nring, sizeof(*b->ring), ring_cmp, b);
    return 0;
}

/* Builds what the backend's algorithm needs; see balance.h. */
int balance_build(struct backend *b)
{
    balance_free(b);
    atomic_store_explicit(&b->rr_next, 0, memory_order_relaxed);
    if (b->balance != BALANCE_SOURCE)
        return 0;
    return ring_build(b);
}

/* Frees the ring; safe to call twice. */
void balance_free(struct backend *b)
{
    free(b->ring);
    b->ring = NULL;
    b->nring = 0;
}
