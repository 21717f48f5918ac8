/*
 * The ScaLAPACK, PBLAS and BLACS entry points muond uses (private to fallback/). Debian ships
 * no header for them, so they are declared here, once. The Fortran routines follow gfortran's
 * calling convention: every argument by reference, and one hidden string-length argument
 * (size_t) per CHARACTER argument, appended after the others.
 */
#ifndef MU_FALLBACK_SCALAPACK_H
#define MU_FALLBACK_SCALAPACK_H

#include <mpi.h>
#include <stddef.h>

#include "core/status.h"

enum { DESC_LEN = 9 }; /* a ScaLAPACK array descriptor */

/* BLACS (C interface) */
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int *context, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int context, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int context);
void Cblacs_set(int context, int what, int *value);

/* Tools */
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld, int *info);

/* Redistribution and PBLAS */
void pdgemr2d_(const int *m, const int *n, const double *a, const int *ia, const int *ja,
               const int *desca, double *b, const int *ib, const int *jb, const int *descb,
               const int *ictxt);
void pdgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
             const double *alpha, const double *a, const int *ia, const int *ja,
             const int *desca, const double *b, const int *ib, const int *jb, const int *descb,
             const double *beta, double *c, const int *ic, const int *jc, const int *descc,
             size_t transa_len, size_t transb_len);
void pdsyrk_(const char *uplo, const char *trans, const int *n, const int *k, const double *alpha,
             const double *a, const int *ia, const int *ja, const int *desca, const double *beta,
             double *c, const int *ic, const int *jc, const int *descc, size_t uplo_len,
             size_t trans_len);
void pdtran_(const int *m, const int *n, const double *alpha, const double *a, const int *ia,
             const int *ja, const int *desca, const double *beta, double *c, const int *ic,
             const int *jc, const int *descc);
void pdlaset_(const char *uplo, const int *m, const int *n, const double *alpha,
              const double *beta, double *a, const int *ia, const int *ja, const int *desca,
              size_t uplo_len);

/* Solvers */
void pdgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a,
              const int *ia, const int *ja, const int *desca, double *s, double *u,
              const int *iu, const int *ju, const int *descu, double *vt, const int *ivt,
              const int *jvt, const int *descvt, double *work, const int *lwork, int *info,
              size_t jobu_len, size_t jobvt_len);
void pdsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *ia,
              const int *ja, const int *desca, double *w, double *z, const int *iz,
              const int *jz, const int *descz, double *work, const int *lwork, int *iwork,
              const int *liwork, int *info, size_t jobz_len, size_t uplo_len);
void pdposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *ia,
             const int *ja, const int *desca, double *b, const int *ib, const int *jb,
             const int *descb, int *info, size_t uplo_len);
void pdgesv_(const int *n, const int *nrhs, double *a, const int *ia, const int *ja,
             const int *desca, int *ipiv, double *b, const int *ib, const int *jb,
             const int *descb, int *info);

/* The one place ScaLAPACK's info is read. Negative: argument -info of `routine` is illegal,
 * which is a bug in muond's call (MU_ERR_SCALAPACK; the caller must not continue). Positive:
 * a numerical failure (MU_ERR_NUMERIC; the caller may skip that matrix). */
mu_status_t mu_scalapack_info(int info, const char *routine);

#endif
