# Reference values for crtstats.power's closed forms, computed by the functions of
# clusterPower 0.7.0 (cpa.normal, cpa.binary, cpa.count) and CRTSize 1.2 (n4means,
# n4props, n4incidence), sourced from the packages' CRAN sources (the R/ folder of each
# source tarball):
#
#   Rscript tests/reference/power_closed.R CLUSTERPOWER_R_DIR CRTSIZE_R_DIR
#
# The functions use only base R and stats. Root finding is run with tol = 1e-12 (the
# packages' default, .Machine$double.eps^0.25, gives about 4 significant digits).
suppressPackageStartupMessages(library(jsonlite))
args <- commandArgs(trailingOnly = TRUE)
cp_dir <- args[1]
crt_dir <- args[2]
for (f in c("cpa.normal.R", "cpa.binary.R", "cpa.count.R")) source(file.path(cp_dir, f))
for (f in c("n4means.R", "n4props.R", "n4incidence.R")) source(file.path(crt_dir, f))
tol <- 1e-12

normal_cases <- list(
  list(nclusters = 16, nsubjects = 10, d = 1, ICC = 0.1, vart = 5, CV = 0, method = "taylor"),
  list(nclusters = 20, nsubjects = 100, d = 0.2, ICC = 0.1, vart = 1, CV = 0.5, method = "taylor"),
  list(nclusters = 20, nsubjects = 100, d = 0.2, ICC = 0.1, vart = 1, CV = 0.5, method = "weighted"),
  list(nclusters = 12, nsubjects = 20, d = 0.3, ICC = 0.05, vart = 1, CV = 0, method = "taylor"),
  list(nclusters = 5, nsubjects = 30, d = 0.8, ICC = 0.2, vart = 2, CV = 0.7, method = "taylor"),
  list(nclusters = 8, nsubjects = 15, d = 0.5, ICC = 0.3, vart = 1, CV = 0.4, method = "weighted")
)
normal <- lapply(normal_cases, function(a) {
  a$power <- cpa.normal(power = NA, nclusters = a$nclusters, nsubjects = a$nsubjects,
                        d = a$d, ICC = a$ICC, vart = a$vart, CV = a$CV, method = a$method)[[1]]
  a$nclusters_for_08 <- cpa.normal(power = 0.8, nsubjects = a$nsubjects, d = a$d,
                                   ICC = a$ICC, vart = a$vart, CV = a$CV,
                                   method = a$method, tol = tol)[[1]]
  a
})

binary_cases <- list(
  list(nclusters = 38, nsubjects = 10, p1 = 0.1, p2 = 0.2, ICC = 0.1, CV = 0, tdist = TRUE),
  list(nclusters = 38, nsubjects = 10, p1 = 0.1, p2 = 0.2, ICC = 0.1, CV = 0, tdist = FALSE),
  list(nclusters = 12, nsubjects = 60, p1 = 0.3, p2 = 0.2, ICC = 0.05, CV = 0.4, tdist = TRUE),
  list(nclusters = 7, nsubjects = 25, p1 = 0.5, p2 = 0.25, ICC = 0.02, CV = 0.6, tdist = TRUE)
)
binary <- lapply(binary_cases, function(a) {
  a$power <- cpa.binary(power = NA, nclusters = a$nclusters, nsubjects = a$nsubjects,
                        p1 = a$p1, p2 = a$p2, ICC = a$ICC, CV = a$CV, tdist = a$tdist)[[1]]
  a$nclusters_for_08 <- cpa.binary(power = 0.8, nsubjects = a$nsubjects, p1 = a$p1,
                                   p2 = a$p2, ICC = a$ICC, CV = a$CV, tdist = a$tdist,
                                   tol = tol)[[1]]
  a
})

count_cases <- list(
  list(nclusters = 25, nsubjects = 10, r1 = 0.1, r2 = 0.2, CVB = 0.1),
  list(nclusters = 6, nsubjects = 2000, r1 = 0.01, r2 = 0.005, CVB = 0.25),
  list(nclusters = 10, nsubjects = 500, r1 = 0.3, r2 = 0.4, CVB = 0.2)
)
count <- lapply(count_cases, function(a) {
  a$power <- cpa.count(power = NA, nclusters = a$nclusters, nsubjects = a$nsubjects,
                       r1 = a$r1, r2 = a$r2, CVB = a$CVB)[[1]]
  a$nclusters_for_08 <- cpa.count(power = 0.8, nsubjects = a$nsubjects, r1 = a$r1,
                                  r2 = a$r2, CVB = a$CVB, tol = tol)[[1]]
  a
})

# CRTSize: cases where the z formula is used (n >= 30 clusters per arm); below 30 the
# packages iterate a central-t approximation that stops when successive n differ by
# less than one cluster, which is not a converged quantity.
crt_means <- lapply(list(
  list(delta = 0.2, sigma = 1, m = 20, ICC = 0.05, AR = 1),
  list(delta = 2.8, sigma = 10, m = 15, ICC = 0.1, AR = 1.5)
), function(a) {
  r <- n4means(delta = a$delta, sigma = a$sigma, m = a$m, ICC = a$ICC, AR = a$AR)
  c(a, list(n = r$n, nE = r$nE, nC = r$nC))
})
crt_props <- lapply(list(
  list(pe = 0.03, pc = 0.10, m = 25, ICC = 0.20, AR = 1),
  list(pe = 0.25, pc = 0.3, m = 60, ICC = 0.02, AR = 1)
), function(a) {
  r <- n4props(pe = a$pe, pc = a$pc, m = a$m, ICC = a$ICC, AR = a$AR)
  c(a, list(n = r$n, nE = r$nE, nC = r$nC))
})
crt_incidence <- lapply(list(
  list(le = 0.01, lc = 0.005, m = 1000, t = 2, CV = 0.25),
  list(le = 0.02, lc = 0.016, m = 500, t = 1, CV = 0.15)
), function(a) {
  r <- n4incidence(le = a$le, lc = a$lc, m = a$m, t = a$t, CV = a$CV)
  c(a, list(n = r$n, nE = r$nE, nC = r$nC))
})

out <- list(
  versions = list(R = as.character(getRversion()), clusterPower = "0.7.0",
                  CRTSize = "1.2"),
  cpa_normal = normal, cpa_binary = binary, cpa_count = count,
  n4means = crt_means, n4props = crt_props, n4incidence = crt_incidence
)
write_json(out, "tests/reference/power_closed.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
