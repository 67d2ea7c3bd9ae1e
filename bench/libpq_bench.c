/* The benchmark workloads in plain C on libpq: the baseline that
 * bench/lua_bench.lua is measured against. Usage: libpq_bench WORKLOAD N
 * Prints "wall_seconds cpu_seconds max_rss_kb checksum" on one line. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "binary.h"

/* The typical workload's table and statement (bench/lua_bench.lua has the
 * same): 1000 stored rows read back, so the server's cost is mostly its output. */
#define TYPICAL_TABLE \
  "create temp table bench_typical as select g as id, md5(g::text)::uuid as uid, 'name ' || g as name, " \
  "timestamptz '2024-01-01 00:00:00+00' + g * interval '61.25 seconds' as created, " \
  "(g * 1.25)::numeric(12, 2) as amount, jsonb_build_object('k', g) as meta, array[g, g + 1] as tags " \
  "from generate_series(1, 1000) g"
#define TYPICAL_SQL "select id, uid, name, created, amount, meta, tags from bench_typical"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(PGconn *c, const char *what) {
  fprintf(stderr, "libpq_bench: %s: %s", what, PQerrorMessage(c));
  exit(1);
}

static PGresult *must(PGconn *c, PGresult *r, const char *what) {
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) die(c, what);
  return r;
}

int main(int argc, char **argv) {
  const char *workload = argc > 1 ? argv[1] : "point";
  long n = argc > 2 ? atol(argv[2]) : 1000, i;
  long long checksum = 0;
  double started;
  clock_t cpu_started;
  struct rusage ru;
  PGconn *c = PQconnectdb("");
  if (PQstatus(c) != CONNECTION_OK) die(c, "connect");
  PQclear(must(c, PQexec(c, "SET client_min_messages = warning"), "set"));

  if (strcmp(workload, "point") == 0) {
    /* one row by parameter, prepared once: the shape of get_user_by_id */
    PQclear(must(c, PQprepare(c, "p", "select $1::int8 as id, 'user' || $1 as email, true as active", 1, NULL), "prepare"));
    started = now();
    cpu_started = clock();
    for (i = 0; i < n; i++) {
      char id[24];
      const char *values[1];
      PGresult *r;
      snprintf(id, sizeof id, "%ld", i);
      values[0] = id;
      r = must(c, PQexecPrepared(c, "p", 1, values, NULL, NULL, 0), "exec");
      checksum += atoll(PQgetvalue(r, 0, 0)) + (long long)strlen(PQgetvalue(r, 0, 1)) + (PQgetvalue(r, 0, 2)[0] == 't');
      PQclear(r);
    }
  } else if (strcmp(workload, "select1") == 0) {
    /* SELECT 1, prepared once: the round trip and nothing else */
    PQclear(must(c, PQprepare(c, "s", "select 1 as one", 0, NULL), "prepare"));
    started = now();
    cpu_started = clock();
    for (i = 0; i < n; i++) {
      PGresult *r = must(c, PQexecPrepared(c, "s", 0, NULL, NULL, NULL, 0), "exec");
      checksum += atoll(PQgetvalue(r, 0, 0));
      PQclear(r);
    }
  } else if (strcmp(workload, "wide") == 0) {
    /* 1000 rows of mixed types, every value converted: the shape of a listing */
    PQclear(must(c, PQprepare(c, "w",
      "select g as id, 'name ' || g as name, g * 1.5::float8 as score, g % 2 = 0 as even, "
      "jsonb_build_object('k', g, 'tags', jsonb_build_array('a', 'b')) as meta "
      "from generate_series(1, 1000) g", 0, NULL), "prepare"));
    started = now();
    cpu_started = clock();
    for (i = 0; i < n; i++) {
      PGresult *r = must(c, PQexecPrepared(c, "w", 0, NULL, NULL, NULL, 0), "exec");
      int rows = PQntuples(r), row;
      for (row = 0; row < rows; row++) {
        checksum += atoll(PQgetvalue(r, row, 0));
        checksum += (long long)strlen(PQgetvalue(r, row, 1));
        checksum += (long long)strtod(PQgetvalue(r, row, 2), NULL);
        checksum += PQgetvalue(r, row, 3)[0] == 't';
        {
          /* C keeps jsonb as text: find "k" by scanning, where Lua decodes it all */
          const char *k = strstr(PQgetvalue(r, row, 4), "\"k\": ");
          checksum += k ? atoll(k + 5) : 0;
        }
      }
      PQclear(r);
    }
  } else if (strcmp(workload, "typical") == 0) {
    /* 1000 typical rows: int, uuid, text, timestamptz, numeric, jsonb, int4[];
     * C keeps the text of what Lua turns into strings, reads the numbers */
    PQclear(must(c, PQexec(c, "SET TimeZone = 'UTC'"), "set"));
    PQclear(must(c, PQexec(c, TYPICAL_TABLE), "create"));
    PQclear(must(c, PQprepare(c, "t", TYPICAL_SQL, 0, NULL), "prepare"));
    started = now();
    cpu_started = clock();
    for (i = 0; i < n; i++) {
      PGresult *r = must(c, PQexecPrepared(c, "t", 0, NULL, NULL, NULL, 0), "exec");
      int rows = PQntuples(r), row;
      for (row = 0; row < rows; row++) {
        const char *k = strstr(PQgetvalue(r, row, 5), "\"k\": ");
        const char *tag = strchr(PQgetvalue(r, row, 6), ',');
        checksum += atoll(PQgetvalue(r, row, 0));
        checksum += PQgetlength(r, row, 1) + PQgetlength(r, row, 2) + PQgetlength(r, row, 3);
        checksum += (long long)strtod(PQgetvalue(r, row, 4), NULL);
        checksum += k ? atoll(k + 5) : 0;
        checksum += tag ? atoll(tag + 1) : 0;
      }
      PQclear(r);
    }
  } else if (strcmp(workload, "typical_binary") == 0) {
    /* typical with binary results: the server skips its text output; C turns
     * the bytes into the same values with the core's own decoders (binary.c):
     * the timestamptz and numeric into the server's text, the array's element */
    PQclear(must(c, PQexec(c, "SET TimeZone = 'UTC'"), "set"));
    PQclear(must(c, PQexec(c, TYPICAL_TABLE), "create"));
    PQclear(must(c, PQprepare(c, "t", TYPICAL_SQL, 0, NULL), "prepare"));
    started = now();
    cpu_started = clock();
    for (i = 0; i < n; i++) {
      PGresult *r = must(c, PQexecPrepared(c, "t", 0, NULL, NULL, NULL, 1), "exec");
      int rows = PQntuples(r), row;
      for (row = 0; row < rows; row++) {
        char uuid[36], ts[BINARY_TIME_MAX], num[64];
        size_t len;
        long long v = 0;
        const char *k = strstr(PQgetvalue(r, row, 5) + 1, "\"k\": "), *ev;
        binary_array a;
        binary_int(PQgetvalue(r, row, 0), 4, 0, &v);
        checksum += v;
        if (binary_uuid(PQgetvalue(r, row, 1), 16, uuid) == 0) checksum += 36;
        checksum += PQgetlength(r, row, 2);
        if (binary_timestamp(PQgetvalue(r, row, 3), 8, 1, 0, ts, &len) == 0) checksum += (long long)len;
        if (binary_numeric(PQgetvalue(r, row, 4), (size_t)PQgetlength(r, row, 4), num, sizeof num - 1, &len) == 0) {
          num[len] = '\0';
          checksum += (long long)strtod(num, NULL);
        }
        checksum += k ? atoll(k + 5) : 0;
        if (binary_array_open(PQgetvalue(r, row, 6), (size_t)PQgetlength(r, row, 6), &a) == 0 &&
            binary_array_next(&a, &ev, &len) == 0 && binary_array_next(&a, &ev, &len) == 0 && ev &&
            binary_int(ev, len, 0, &v) == 0)
          checksum += v;
      }
      PQclear(r);
    }
  } else if (strcmp(workload, "wide_binary") == 0) {
    /* wide with binary results: the server skips its text output; C reads
     * the integers and the float from their bytes */
    PQclear(must(c, PQprepare(c, "w",
      "select g as id, 'name ' || g as name, g * 1.5::float8 as score, g % 2 = 0 as even, "
      "jsonb_build_object('k', g, 'tags', jsonb_build_array('a', 'b')) as meta "
      "from generate_series(1, 1000) g", 0, NULL), "prepare"));
    started = now();
    cpu_started = clock();
    for (i = 0; i < n; i++) {
      PGresult *r = must(c, PQexecPrepared(c, "w", 0, NULL, NULL, NULL, 1), "exec");
      int rows = PQntuples(r), row;
      for (row = 0; row < rows; row++) {
        const unsigned char *id = (const unsigned char *)PQgetvalue(r, row, 0);
        const unsigned char *f = (const unsigned char *)PQgetvalue(r, row, 2);
        unsigned long long bits = 0;
        double score;
        int k;
        for (k = 0; k < 8; k++) bits = (bits << 8) | f[k];
        memcpy(&score, &bits, sizeof score);
        checksum += (long long)(int)((unsigned)id[0] << 24 | (unsigned)id[1] << 16 | (unsigned)id[2] << 8 | id[3]);
        checksum += PQgetlength(r, row, 1);
        checksum += (long long)score;
        checksum += PQgetvalue(r, row, 3)[0] != 0;
        {
          const char *kk = strstr(PQgetvalue(r, row, 4) + 1, "\"k\": ");
          checksum += kk ? atoll(kk + 5) : 0;
        }
      }
      PQclear(r);
    }
  } else if (strcmp(workload, "insert") == 0) {
    /* parameterised inserts inside one transaction */
    PQclear(must(c, PQexec(c, "create temp table bench_ins (id int8, name text, data jsonb)"), "create"));
    PQclear(must(c, PQprepare(c, "i", "insert into bench_ins values ($1, $2, $3)", 3, NULL), "prepare"));
    started = now();
    cpu_started = clock();
    PQclear(must(c, PQexec(c, "begin"), "begin"));
    for (i = 0; i < n; i++) {
      char id[24], json[64];
      const char *values[3];
      PGresult *r;
      snprintf(id, sizeof id, "%ld", i);
      snprintf(json, sizeof json, "{\"n\":%ld,\"ok\":true}", i);
      values[0] = id;
      values[1] = "a name";
      values[2] = json;
      r = must(c, PQexecPrepared(c, "i", 3, values, NULL, NULL, 0), "exec");
      checksum += atoll(PQcmdTuples(r));
      PQclear(r);
    }
    PQclear(must(c, PQexec(c, "commit"), "commit"));
  } else if (strcmp(workload, "copy") == 0) {
    /* COPY FROM STDIN, one text line per row, formatted with snprintf */
    PGresult *r;
    PQclear(must(c, PQexec(c, "create temp table bench_copy (id int8, name text, data jsonb)"), "create"));
    started = now();
    cpu_started = clock();
    r = PQexec(c, "COPY bench_copy (id, name, data) FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN) die(c, "copy");
    PQclear(r);
    for (i = 0; i < n; i++) {
      char line[128];
      int len = snprintf(line, sizeof line, "%ld\ta name\t{\"n\":%ld,\"ok\":true}\n", i, i);
      if (PQputCopyData(c, line, len) != 1) die(c, "copy data");
    }
    if (PQputCopyEnd(c, NULL) != 1) die(c, "copy end");
    r = must(c, PQgetResult(c), "copy result");
    checksum += atoll(PQcmdTuples(r));
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL) PQclear(r);
  } else if (strcmp(workload, "pipeline") == 0 || strcmp(workload, "pipeline_tx") == 0) {
    /* batches of 1000 prepared inserts in pipeline mode: a sync after each
     * statement (each its own transaction), or one sync per batch inside
     * BEGIN/COMMIT (pipeline_tx) */
    int in_tx = strcmp(workload, "pipeline_tx") == 0;
    long b, batches = n / 1000, j;
    PQclear(must(c, PQexec(c, "create temp table bench_pipe (id int8, name text)"), "create"));
    PQclear(must(c, PQprepare(c, "i", "insert into bench_pipe values ($1, $2)", 2, NULL), "prepare"));
    started = now();
    cpu_started = clock();
    for (b = 0; b < batches; b++) {
      PGresult *r;
      if (in_tx) PQclear(must(c, PQexec(c, "begin"), "begin"));
      if (!PQenterPipelineMode(c)) die(c, "pipeline");
      for (j = 0; j < 1000; j++) {
        char id[24];
        const char *values[2];
        snprintf(id, sizeof id, "%ld", b * 1000 + j);
        values[0] = id;
        values[1] = "a name";
        if (!PQsendQueryPrepared(c, "i", 2, values, NULL, NULL, 0)) die(c, "send");
        if (!in_tx && !PQpipelineSync(c)) die(c, "sync");
      }
      if (in_tx && !PQpipelineSync(c)) die(c, "sync");
      for (j = 0; j < 1000; j++) {
        r = must(c, PQgetResult(c), "result");
        checksum += atoll(PQcmdTuples(r));
        PQclear(r);
        r = PQgetResult(c);              /* NULL: the end of this statement */
        if (r) die(c, "extra result");
        if (!in_tx) {
          r = PQgetResult(c);
          if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) die(c, "sync result");
          PQclear(r);
        }
      }
      if (in_tx) {
        r = PQgetResult(c);
        if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) die(c, "sync result");
        PQclear(r);
      }
      if (!PQexitPipelineMode(c)) die(c, "exit pipeline");
      if (in_tx) PQclear(must(c, PQexec(c, "commit"), "commit"));
    }
  } else if (strcmp(workload, "stream") == 0) {
    /* n rows in single-row mode: flat memory */
    char sql[128];
    PGresult *r;
    snprintf(sql, sizeof sql, "select g as id, 'row ' || g as name from generate_series(1, %ld) g", n);
    started = now();
    cpu_started = clock();
    if (!PQsendQuery(c, sql) || !PQsetSingleRowMode(c)) die(c, "send");
    while ((r = PQgetResult(c)) != NULL) {
      ExecStatusType st = PQresultStatus(r);
      if (st == PGRES_SINGLE_TUPLE) {
        checksum += atoll(PQgetvalue(r, 0, 0)) + (long long)strlen(PQgetvalue(r, 0, 1));
      } else if (st != PGRES_TUPLES_OK) {
        die(c, "stream");
      }
      PQclear(r);
    }
  } else {
    fprintf(stderr, "libpq_bench: unknown workload %s\n", workload);
    return 2;
  }
  {
    double elapsed = now() - started, cpu = (double)(clock() - cpu_started) / CLOCKS_PER_SEC;
    getrusage(RUSAGE_SELF, &ru);
    printf("%.3f %.3f %ld %lld\n", elapsed, cpu, ru.ru_maxrss, checksum);
  }
  PQfinish(c);
  return 0;
}
