/* The loopback comm backend and the agreement helper (comm/comm.h). */
#include <criterion/criterion.h>
#include <string.h>

#include "comm/comm.h"

Test(comm, loopback_collectives)
{
    mu_comm_t *c = NULL;
    cr_assert_eq(mu_comm_create("loopback", &c), MU_OK);
    cr_expect_eq(mu_comm_rank(c), 0);
    cr_expect_eq(mu_comm_size(c), 1);
    const char send[8] = "abcdefg";
    char recv[8] = {0};
    const int64_t sc = 5, sd = 2, rc = 5, rd = 1;
    const mu_alltoallv_args_t a = {send, &sc, &sd, recv, &rc, &rd};
    mu_comm_request_t *req = NULL;
    cr_assert_eq(mu_comm_ialltoallv(c, &a, &req), MU_OK);
    bool done = false;
    cr_expect_eq(mu_comm_test(c, req, &done), MU_OK);
    cr_expect(done);
    cr_expect_eq(mu_comm_wait(c, &req), MU_OK);
    cr_expect_null(req);
    cr_expect_eq(memcmp(recv + 1, "cdefg", 5), 0);
    int64_t x = 41;
    cr_expect_eq(mu_comm_allreduce(c, &x, 1, MU_COMM_I64, MU_COMM_SUM), MU_OK);
    cr_expect_eq(x, 41);
    const int64_t bad = -1;
    const mu_alltoallv_args_t b = {send, &bad, &sd, recv, &rc, &rd};
    cr_expect_eq(mu_comm_alltoallv(c, &b), MU_ERR_INVALID, "negative count");
    cr_expect_eq(mu_comm_bcast(c, &x, 8, 1), MU_ERR_INVALID, "root outside the group");
    mu_comm_destroy(&c);
    cr_expect_null(c);
}

Test(comm, agreement)
{
    mu_comm_t *c = NULL;
    cr_assert_eq(mu_comm_create("loopback", &c), MU_OK);
    cr_expect_eq(mu_comm_agree(c, MU_OK), MU_OK);
    cr_expect_eq(mu_comm_agree(c, MU_ERR_NUMERIC), MU_ERR_NUMERIC);
    mu_comm_destroy(&c);
    cr_expect_eq(mu_comm_create("carrier-pigeon", &c), MU_ERR_INVALID);
}
