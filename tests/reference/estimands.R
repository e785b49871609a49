# Reference values for crtstats.models.estimands (tests/test_estimands.py).
#
# Data, written by this script under tests/reference/data/:
#   estimands_awards.csv  clubSandwich::AchievementAwardsRCT, year 2001 (the year of the
#                         awards): 39 schools (cluster school_id, 9 to 248 students),
#                         treated 0/1, binary outcome Bagrut_status (the matriculation
#                         certificate, 0/1 as shipped), covariates sex and lagscore;
#   estimands_sim.csv     a simulated trial of 24 clusters (sizes 5 to 150) whose effect
#                         grows with cluster size (informative cluster size), with an
#                         individual covariate x and a cluster covariate h.
#
# Everything is computed by hand from the paper's formulas (Li, Tong, Fang, Cheng,
# Kahan and Wang 2025, Stat Med, doi:10.1002/sim.70270), not by MRStdCRT:
#   working model  glm(y ~ treated + covariates, binomial), epsilon 1e-14;
#   eta_ai         cluster mean of the predicted risks with treated set to a;
#   mu_1i          A_i / pi (Ybar_i - eta_1i) + eta_1i (pi = share of treated clusters,
#                  re-estimated in each jackknife replicate), mu_0i likewise;
#   cluster-average risks mean(mu_ai); participant-average sum(n_i mu_ai) / sum(n_i);
#   effects        RD, log RR, log OR; their cluster-minus-participant differences;
#   jackknife      (G - 1) / G * sum (theta_(-i) - mean)^2 over clusters left out.
# Independence GEE (geepack::geeglm, epsilon 1e-12) of y ~ treated with the identity
# (gaussian), log (poisson) and logit (binomial) links gives the participant-average RD,
# log RR and log OR; weighted by 1 / n_i, the cluster-average ones. The Mancl-DeRouen
# sandwich is computed below from its matrix formula with n_i x n_i matrices per cluster.
#
# Run from the repository root: Rscript tests/reference/estimands.R

suppressPackageStartupMessages({
  library(clubSandwich)
  library(geepack)
  library(jsonlite)
})

dir <- "tests/reference/data"
aw <- subset(as.data.frame(AchievementAwardsRCT), year == "2001",
             select = c(school_id, treated, Bagrut_status, sex, lagscore))
names(aw)[names(aw) == "Bagrut_status"] <- "y"
aw <- aw[order(aw$school_id), ]
write.csv(aw, file.path(dir, "estimands_awards.csv"), row.names = FALSE)

set.seed(20251)
G <- 24
size <- round(exp(seq(log(5), log(150), length.out = G)))
trt <- sample(rep(0:1, G / 2))
h <- rnorm(G)
sim <- do.call(rbind, lapply(seq_len(G), function(i) {
  x <- rnorm(size[i])
  b <- rnorm(1, 0, 0.4)
  eta <- -0.8 + 0.3 * x + 0.4 * h[i] + b + trt[i] * (0.9 - 0.35 * log(size[i]))
  data.frame(cluster = sprintf("C%02d", i), treated = trt[i], x = x, h = h[i],
             y = rbinom(size[i], 1, plogis(eta)))
}))
write.csv(sim, file.path(dir, "estimands_sim.csv"), row.names = FALSE)

point <- function(d, id, covs) {
  f <- reformulate(c("treated", covs), "y")
  fit <- glm(f, binomial, d, control = glm.control(epsilon = 1e-14, maxit = 100))
  p1 <- predict(fit, transform(d, treated = 1), type = "response")
  p0 <- predict(fit, transform(d, treated = 0), type = "response")
  cl <- d[[id]]
  n <- as.vector(tapply(d$y, cl, length))
  ybar <- as.vector(tapply(d$y, cl, mean))
  a <- as.vector(tapply(d$treated, cl, mean))
  e1 <- as.vector(tapply(p1, cl, mean))
  e0 <- as.vector(tapply(p0, cl, mean))
  pi <- mean(a)
  mu1 <- a / pi * (ybar - e1) + e1
  mu0 <- (1 - a) / (1 - pi) * (ybar - e0) + e0
  r <- c(sum(n * mu1) / sum(n), sum(n * mu0) / sum(n), mean(mu1), mean(mu0))
  m <- function(r1, r0) c(r1 - r0, log(r1 / r0), qlogis(r1) - qlogis(r0))
  pa <- m(r[1], r[2]); ca <- m(r[3], r[4])
  c(r, pa, ca, ca - pa)
}

jackknife <- function(d, id, covs) {
  full <- point(d, id, covs)
  ids <- unique(d[[id]])
  reps <- t(sapply(ids, function(i) point(d[d[[id]] != i, ], id, covs)))
  g <- length(ids)
  dev <- sweep(reps, 2, colMeans(reps))
  se <- sqrt((g - 1) / g * colSums(dev^2))
  list(estimate = full, std_error = se, df = g - 2)
}

mancl_derouen <- function(fit, d, id) {
  X <- model.matrix(fit)
  mu <- as.vector(fitted(fit))
  w <- as.vector(fit$prior.weights)
  fam <- fit$family
  dmu <- fam$mu.eta(as.vector(fit$linear.predictors))
  v <- fam$variance(mu)
  D <- X * dmu
  bread <- solve(crossprod(D, D * (w / v)))
  meat <- matrix(0, ncol(X), ncol(X))
  for (cl in unique(d[[id]])) {
    k <- which(d[[id]] == cl)
    Di <- D[k, , drop = FALSE]
    Vi_inv <- diag(w[k] / v[k], length(k))
    H <- Di %*% bread %*% t(Di) %*% Vi_inv
    r <- solve(diag(length(k)) - H, d$y[k] - mu[k])
    u <- t(Di) %*% Vi_inv %*% r
    meat <- meat + u %*% t(u)
  }
  bread %*% meat %*% bread
}

gee_rows <- function(d, id, weighted) {
  d <- d[order(d[[id]]), ]
  d$w <- if (weighted) 1 / ave(d$y, d[[id]], FUN = length) else 1
  d$id_ <- as.integer(factor(d[[id]]))
  out <- list()
  for (fam in c("gaussian", "poisson", "binomial")) {
    fit <- geeglm(y ~ treated, family = fam, data = d, id = id_, weights = w,
                  corstr = "independence", control = geese.control(epsilon = 1e-12,
                                                                   maxit = 100))
    md <- mancl_derouen(fit, d, "id_")
    out[[fam]] <- list(estimate = unname(coef(fit)[2]),
                       robust_se = unname(sqrt(diag(vcov(fit)))[2]),
                       mancl_derouen_se = sqrt(md[2, 2]))
  }
  out
}

cases <- list(
  awards = list(d = aw, id = "school_id", covs = c("sex", "lagscore")),
  sim = list(d = sim, id = "cluster", covs = c("x", "h"))
)
out <- list()
for (name in names(cases)) {
  cs <- cases[[name]]
  out[[name]] <- list(
    n_clusters = length(unique(cs$d[[cs$id]])),
    unadjusted = jackknife(cs$d, cs$id, character(0)),
    adjusted = jackknife(cs$d, cs$id, cs$covs),
    gee_participant = gee_rows(cs$d, cs$id, FALSE),
    gee_cluster = gee_rows(cs$d, cs$id, TRUE)
  )
}
out$order <- c("risk_participant_1", "risk_participant_0", "risk_cluster_1",
               "risk_cluster_0", "participant_rd", "participant_log_rr",
               "participant_log_or", "cluster_rd", "cluster_log_rr", "cluster_log_or",
               "difference_rd", "difference_log_rr", "difference_log_or")
write_json(out, "tests/reference/estimands.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
