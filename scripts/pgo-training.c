/* The training run of the bundled SQLite's profile-guided build (setup.py, docs/sqlite-build.md).
 *
 * setup.py links this program against a sqlite3.c compiled with -fprofile-generate, runs it
 * once, and compiles sqlite3.c again with the profile it wrote. So what runs here is what the
 * compiler lays the VM, the B-tree and the pager out for: the work a pool does in a service, in
 * the pool's own configuration (WAL, synchronous=NORMAL, prepared statements reused). Code it
 * never reaches is optimised as usual (-fprofile-partial-training).
 *
 * Usage: pgo-training DIR   (DIR: an empty, writable directory for the database)
 * Exit status 0 when every statement succeeded; otherwise the failing SQL and SQLite's message
 * go to stderr, and the build falls back to (or, if asked for PGO, stops without) a profile.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite3.h"

enum { USERS = 20000, ORDERS_PER_USER = 5, BATCH = 1000, POINT_READS = 60000, JOINS = 400 };

static sqlite3 *db;

static void fail(const char *what) {
    fprintf(stderr, "pgo-training: %s: %s\n", what, db ? sqlite3_errmsg(db) : "no database");
    exit(1);
}

static void exec(const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "pgo-training: %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        exit(1);
    }
}

static sqlite3_stmt *prepare(const char *sql, unsigned flags) {
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, flags, &stmt, NULL) != SQLITE_OK || stmt == NULL)
        fail(sql);
    return stmt;
}

/* Step to the end, reading every column of every row as a caller building rows would. */
static int drain(sqlite3_stmt *stmt) {
    int rc, rows = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int n = sqlite3_column_count(stmt);
        for (int i = 0; i < n; i++) {
            switch (sqlite3_column_type(stmt, i)) {
            case SQLITE_INTEGER: (void)sqlite3_column_int64(stmt, i); break;
            case SQLITE_FLOAT: (void)sqlite3_column_double(stmt, i); break;
            case SQLITE_TEXT:
                (void)sqlite3_column_text(stmt, i);
                (void)sqlite3_column_bytes(stmt, i);
                break;
            case SQLITE_BLOB:
                (void)sqlite3_column_blob(stmt, i);
                (void)sqlite3_column_bytes(stmt, i);
                break;
            default: break;
            }
        }
        rows++;
    }
    if (rc != SQLITE_DONE)
        fail(sqlite3_sql(stmt));
    if (sqlite3_reset(stmt) != SQLITE_OK)
        fail(sqlite3_sql(stmt));
    return rows;
}

static void bind_int(sqlite3_stmt *stmt, int i, sqlite3_int64 v) {
    if (sqlite3_bind_int64(stmt, i, v) != SQLITE_OK)
        fail("bind int");
}

static void bind_text(sqlite3_stmt *stmt, int i, const char *v) {
    if (sqlite3_bind_text(stmt, i, v, -1, SQLITE_TRANSIENT) != SQLITE_OK)
        fail("bind text");
}

static void bind_double(sqlite3_stmt *stmt, int i, double v) {
    if (sqlite3_bind_double(stmt, i, v) != SQLITE_OK)
        fail("bind double");
}

/* Finalize a phase's statements; each ran to completion, so each returns SQLITE_OK. */
static void finalize_all(sqlite3_stmt *const *stmts, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (sqlite3_finalize(stmts[i]) != SQLITE_OK)
            fail("finalize");
}

#define FINALIZE(...)                                                                          \
    do {                                                                                       \
        sqlite3_stmt *const all_[] = {__VA_ARGS__};                                            \
        finalize_all(all_, sizeof all_ / sizeof all_[0]);                                      \
    } while (0)

/* A fixed pseudo-random sequence: the same profile on every build. */
static unsigned long long seed = 0x9E3779B97F4A7C15ull;
static unsigned next_random(void) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (unsigned)(seed >> 11);
}

static void load(void) {
    static const char *statuses[] = {"new", "paid", "shipped", "returned"};
    char name[32], email[64];
    sqlite3_stmt *user = prepare(
        "INSERT INTO users (name, email, score) VALUES (?, ?, ?)", SQLITE_PREPARE_PERSISTENT);
    sqlite3_stmt *order = prepare(
        "INSERT INTO orders (user_id, amount, status) VALUES (?, ?, ?)",
        SQLITE_PREPARE_PERSISTENT);
    for (int first = 1; first <= USERS; first += BATCH) {
        exec("BEGIN IMMEDIATE");
        for (int id = first; id < first + BATCH && id <= USERS; id++) {
            snprintf(name, sizeof name, "user %d", id);
            snprintf(email, sizeof email, "user%d@example.com", id);
            bind_text(user, 1, name);
            bind_text(user, 2, email);
            bind_double(user, 3, (next_random() % 10000) / 100.0);
            drain(user);
            for (int k = 0; k < ORDERS_PER_USER; k++) {
                bind_int(order, 1, id);
                bind_double(order, 2, (next_random() % 100000) / 100.0);
                bind_text(order, 3, statuses[next_random() % 4]);
                drain(order);
            }
        }
        exec("COMMIT");
    }
    FINALIZE(user, order);
}

static void reads(void) {
    char email[64];
    sqlite3_stmt *by_id = prepare(
        "SELECT id, name, email, score FROM users WHERE id = ?", SQLITE_PREPARE_PERSISTENT);
    sqlite3_stmt *by_email = prepare(
        "SELECT id, name, score FROM users WHERE email = ?", SQLITE_PREPARE_PERSISTENT);
    sqlite3_stmt *join = prepare(
        "SELECT u.id % 16 AS bucket, o.status, count(*), sum(o.amount), avg(u.score) "
        "FROM users AS u JOIN orders AS o ON o.user_id = u.id WHERE u.id BETWEEN ? AND ? + 599 "
        "GROUP BY bucket, o.status ORDER BY bucket, o.status", SQLITE_PREPARE_PERSISTENT);
    sqlite3_stmt *top = prepare(
        "SELECT user_id, max(amount), count(*) FROM orders WHERE status = ? AND amount > ? "
        "GROUP BY user_id ORDER BY 2 DESC LIMIT 20", SQLITE_PREPARE_PERSISTENT);
    sqlite3_stmt *page = prepare(
        "SELECT id, name FROM users WHERE id > ? ORDER BY id LIMIT 50",
        SQLITE_PREPARE_PERSISTENT);
    sqlite3_stmt *like = prepare(
        "SELECT count(*) FROM users WHERE name LIKE ?", SQLITE_PREPARE_PERSISTENT);
    /* A pool's reader keeps its read transaction across one-shot reads while nothing
     * commits: runs of statements inside one snapshot. */
    for (int i = 0; i < POINT_READS; i++) {
        if (i % 100 == 0)
            exec("BEGIN");
        bind_int(by_id, 1, 1 + next_random() % USERS);
        drain(by_id);
        if (i % 100 == 99)
            exec("COMMIT");
    }
    for (int i = 0; i < POINT_READS / 10; i++) {
        snprintf(email, sizeof email, "user%u@example.com", 1 + next_random() % USERS);
        bind_text(by_email, 1, email);
        drain(by_email);
        bind_int(page, 1, next_random() % USERS);
        drain(page);
    }
    for (int i = 0; i < JOINS; i++) {
        sqlite3_int64 lo = 1 + next_random() % (USERS - 600);
        exec("BEGIN");
        bind_int(join, 1, lo);
        bind_int(join, 2, lo);
        drain(join);
        exec("COMMIT");
    }
    for (int i = 0; i < JOINS / 10; i++) {
        bind_text(top, 1, i % 2 ? "paid" : "shipped");
        bind_double(top, 2, (double)(next_random() % 500));
        drain(top);
        bind_text(like, 1, i % 2 ? "user 1%" : "%9");
        drain(like);
    }
    FINALIZE(by_id, by_email, join, top, page, like);
}

static void writes(void) {
    char key[32];
    sqlite3_stmt *update = prepare(
        "UPDATE users SET score = score + 1 WHERE id = ?", SQLITE_PREPARE_PERSISTENT);
    sqlite3_stmt *insert = prepare(
        "INSERT INTO users (name, email, score) VALUES (?, ?, ?) RETURNING id",
        SQLITE_PREPARE_PERSISTENT);
    sqlite3_stmt *upsert = prepare(
        "INSERT INTO kv (key, value, hits) VALUES (?, ?, 1) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, hits = hits + 1",
        SQLITE_PREPARE_PERSISTENT);
    sqlite3_stmt *get = prepare("SELECT value, hits FROM kv WHERE key = ?",
                                SQLITE_PREPARE_PERSISTENT);
    sqlite3_stmt *remove = prepare("DELETE FROM orders WHERE id = ?", SQLITE_PREPARE_PERSISTENT);
    /* Single-row write transactions, as `with pool.writer()` runs them: each one a commit. */
    for (int i = 0; i < 3000; i++) {
        exec("BEGIN IMMEDIATE");
        switch (i % 4) {
        case 0:
            bind_int(update, 1, 1 + next_random() % USERS);
            drain(update);
            break;
        case 1:
            bind_text(insert, 1, "new user");
            bind_text(insert, 2, "new@example.com");
            bind_double(insert, 3, 1.5);
            drain(insert);
            break;
        case 2:
            snprintf(key, sizeof key, "session:%u", next_random() % 500);
            bind_text(upsert, 1, key);
            if (sqlite3_bind_zeroblob(upsert, 2, 64 + (int)(next_random() % 512)) != SQLITE_OK)
                fail("bind zeroblob");
            drain(upsert);
            bind_text(get, 1, key);
            drain(get);
            break;
        default:
            bind_int(remove, 1, 1 + next_random() % (USERS * ORDERS_PER_USER));
            drain(remove);
            break;
        }
        exec("COMMIT");
        if (i % 1000 == 999)
            exec("PRAGMA wal_checkpoint(PASSIVE)");
    }
    FINALIZE(update, insert, upsert, get, remove);
    exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

/* Statements prepared anew each time (the parser and code generator): what a statement
 * cache miss, a migration or an ORM's many distinct queries cost. */
static void prepares(void) {
    static const char *sql[] = {
        "SELECT u.name, o.amount FROM users u LEFT JOIN orders o ON o.user_id = u.id "
        "WHERE u.id IN (1, 2, 3) ORDER BY o.amount DESC",
        "SELECT status, count(*) AS n FROM orders GROUP BY status HAVING n > 10",
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 100) "
        "SELECT sum(i) FROM r",
        "SELECT json_extract('{\"a\": [1, 2, {\"b\": \"c\"}]}', '$.a[2].b')",
        "SELECT id FROM users WHERE score BETWEEN 10 AND 20 AND name NOT LIKE 'x%' LIMIT 5",
        "SELECT count(*) FROM (SELECT DISTINCT user_id FROM orders WHERE amount > 900)",
        "SELECT upper(name), length(email), coalesce(score, 0), typeof(score) FROM users "
        "WHERE id = 7",
        "SELECT max(id), min(id), total(amount) FROM orders WHERE user_id < 100",
        "SELECT u.id FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id "
        "AND o.status = 'returned') LIMIT 10",
        "SELECT name, row_number() OVER (ORDER BY score DESC) FROM users WHERE id < 50",
        "SELECT CAST(score AS INTEGER), round(score, 1), printf('%05d', id) FROM users "
        "WHERE id < 20",
        "SELECT key, hits FROM kv ORDER BY hits DESC, key LIMIT 3",
    };
    for (int round = 0; round < 60; round++) {
        for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
            sqlite3_stmt *stmt = prepare(sql[i], 0);
            drain(stmt);
            if (sqlite3_finalize(stmt) != SQLITE_OK)
                fail(sql[i]);
        }
    }
    exec("CREATE TABLE IF NOT EXISTS audit (at REAL, what TEXT, detail BLOB)");
    exec("CREATE INDEX IF NOT EXISTS audit_at ON audit (at)");
    exec("INSERT INTO audit SELECT id * 0.5, name, randomblob(16) FROM users WHERE id < 2000");
    exec("ANALYZE");
    exec("DROP INDEX audit_at");
    exec("DROP TABLE audit");
}

int main(int argc, char **argv) {
    char path[4096];
    if (argc != 2) {
        fprintf(stderr, "usage: pgo-training DIR\n");
        return 2;
    }
    if (snprintf(path, sizeof path, "%s/training.db", argv[1]) >= (int)sizeof path) {
        fprintf(stderr, "pgo-training: directory name too long\n");
        return 2;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        fail("open");
    exec("PRAGMA journal_mode = wal");
    exec("PRAGMA synchronous = normal");
    exec("PRAGMA foreign_keys = on");
    exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, score REAL)");
    exec("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, "
         "amount REAL NOT NULL, status TEXT NOT NULL)");
    exec("CREATE INDEX orders_user ON orders (user_id)");
    exec("CREATE INDEX users_email ON users (email)");
    exec("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB, hits INTEGER) WITHOUT ROWID");
    load();
    reads();
    writes();
    prepares();
    if (sqlite3_close(db) != SQLITE_OK)
        fail("close");
    return 0;
}
