# Reference values for crtstats.gee (tests/test_gee.py).
#
# Data, each written by this script or beside it under tests/reference/data/:
#   gee_admissions.csv  the follow-up service users of the crtstats example trial
#                       (load_example()) with their team's arm, stratum and pre-period
#                       admission proportion (pre_prop);
#   gee_ohio.csv        geepack::ohio (wheeze at ages 7-10 by maternal smoking; binomial);
#   gee_dietox.csv      geepack::dietox (pig weights; gaussian; Feed has missing values);
#   gee_seizure.csv     geepack::seizure in long form as in ?geese: 8-week baseline and
#                       four 2-week periods (poisson with exposure t);
#   gee_epil.csv        MASS::epil (poisson, no offset).
#
# Fits come from geepack::geeglm run to convergence (epsilon 1e-12, maxit 100): the
# estimates, the working correlation alpha, the dispersion (scale.fix = FALSE, also for
# binomial), the robust SE and the approximate jackknife (std.err = "jack"). The
# bias-corrected sandwiches are computed below from the matrix formulas of the papers,
# with n_i x n_i matrices per cluster, at geepack's estimates:
#   Mancl LA, DeRouen TA (2001) Biometrics 57:126-134
#   Kauermann G, Carroll RJ (2001) JASA 96:1387-1396
#   Fay MP, Graubard BI (2001) Biometrics 57:1198-1206 (bound b = 0.75)
# The SAS PROC GENMOD moment estimators (phi over N - p, alpha over pairs - p) are fitted
# by the small Fisher-scoring loop gee_sas() below, written from the GENMOD documentation.
#
# Run from the repository root: Rscript tests/reference/gee.R

suppressPackageStartupMessages({
  library(geepack)
  library(MASS)
  library(jsonlite)
})

ctrl <- geese.control(epsilon = 1e-12, maxit = 100)
dir <- "tests/reference/data"

# ---- data -------------------------------------------------------------------------
adm <- read.csv(file.path(dir, "gee_admissions.csv"), stringsAsFactors = FALSE)
adm$arm <- factor(adm$arm, levels = c("control", "intervention"))
adm$stratum <- factor(adm$stratum)
adm$sex <- factor(adm$sex)
adm <- adm[order(adm$team_id), ]  # geeglm needs the clusters contiguous

data(ohio, package = "geepack")
ohio <- ohio[order(ohio$id, ohio$age), ]
write.csv(ohio, file.path(dir, "gee_ohio.csv"), row.names = FALSE)

data(dietox, package = "geepack")
dietox <- dietox[order(dietox$Pig, dietox$Time), ]
dietox$Pig <- as.integer(as.character(dietox$Pig))
dietox$Litter <- as.integer(as.character(dietox$Litter))
write.csv(dietox, file.path(dir, "gee_dietox.csv"), row.names = FALSE, na = "")
dietox$Evit <- factor(dietox$Evit)
dietox$Cu <- factor(dietox$Cu)

data(seizure, package = "geepack")
seizure$id <- seq_len(nrow(seizure))
seiz <- reshape(seizure, varying = list(c("base", "y1", "y2", "y3", "y4")),
                v.names = "y", times = 0:4, direction = "long")
seiz <- seiz[order(seiz$id, seiz$time), c("id", "time", "y", "trt", "age")]
seiz$t <- ifelse(seiz$time == 0, 8, 2)
seiz$x <- ifelse(seiz$time == 0, 0, 1)
write.csv(seiz, file.path(dir, "gee_seizure.csv"), row.names = FALSE)

epil <- MASS::epil[order(MASS::epil$subject, MASS::epil$period), ]
write.csv(epil, file.path(dir, "gee_epil.csv"), row.names = FALSE)

datasets <- list(admissions = adm, ohio = ohio, dietox = dietox, seizure = seiz, epil = epil)

# ---- the sandwiches from the papers' matrix formulas -------------------------------------
# principal inverse square root of a matrix with real positive eigenvalues
# (I - H is not symmetric; use its eigen decomposition directly)
inv_sqrt <- function(M) {
  e <- eigen(M)
  P <- Re(e$vectors)
  P %*% diag(1 / sqrt(Re(e$values)), nrow(M)) %*% solve(P)
}

sandwiches <- function(X, y, id, off, beta, alpha, fam, b = 0.75) {
  eta <- as.vector(X %*% beta) + off
  mu <- fam$linkinv(eta)
  parts <- lapply(unique(id), function(g) {
    k <- which(id == g)
    n <- length(k)
    D <- diag(fam$mu.eta(eta[k]), n) %*% X[k, , drop = FALSE]
    A <- diag(sqrt(fam$variance(mu[k])), n)
    R <- matrix(alpha, n, n); diag(R) <- 1
    V <- A %*% R %*% A
    list(D = D, Vinv = solve(V), r = y[k] - mu[k], n = n)
  })
  p <- ncol(X)
  B <- Reduce(`+`, lapply(parts, function(z) t(z$D) %*% z$Vinv %*% z$D))
  Binv <- solve(B)
  meat <- list(robust = 0, md = 0, kc = 0, fg = 0)
  for (z in parts) {
    H <- z$D %*% Binv %*% t(z$D) %*% z$Vinv
    IH <- diag(z$n) - H
    u_rob <- t(z$D) %*% z$Vinv %*% z$r
    u_md <- t(z$D) %*% z$Vinv %*% solve(IH) %*% z$r
    u_kc <- t(z$D) %*% z$Vinv %*% inv_sqrt(IH) %*% z$r
    Q <- t(z$D) %*% z$Vinv %*% z$D %*% Binv
    Afg <- diag(1 / sqrt(1 - pmin(b, diag(Q))), p)
    u_fg <- Afg %*% u_rob
    meat$robust <- meat$robust + u_rob %*% t(u_rob)
    meat$md <- meat$md + u_md %*% t(u_md)
    meat$kc <- meat$kc + u_kc %*% t(u_kc)
    meat$fg <- meat$fg + u_fg %*% t(u_fg)
  }
  lapply(meat, function(m) unname(Binv %*% m %*% Binv))
}

# ---- SAS PROC GENMOD moment estimators ------------------------------------------------
# phi = sum e^2 / (N - p); exchangeable alpha = sum_i sum_{j<k} e_ij e_ik / ((M - p) phi)
# with M = sum_i n_i (n_i - 1) / 2; e the Pearson residuals. Fisher scoring for beta.
gee_sas <- function(X, y, id, off, fam, corstr) {
  N <- nrow(X); p <- ncol(X)
  beta <- glm.fit(X, y, family = fam, offset = off)$coefficients
  alpha <- 0
  groups <- split(seq_len(N), id)
  M <- sum(vapply(groups, function(k) length(k) * (length(k) - 1) / 2, 0))
  for (it in 1:500) {
    eta <- as.vector(X %*% beta) + off
    mu <- fam$linkinv(eta)
    e <- (y - mu) / sqrt(fam$variance(mu))
    phi <- sum(e^2) / (N - p)
    alpha_new <- if (corstr == "exchangeable") {
      sum(vapply(groups, function(k) (sum(e[k])^2 - sum(e[k]^2)) / 2, 0)) / ((M - p) * phi)
    } else 0
    B <- matrix(0, p, p); U <- rep(0, p)
    for (k in groups) {
      n <- length(k)
      D <- diag(fam$mu.eta(eta[k]), n) %*% X[k, , drop = FALSE]
      A <- diag(sqrt(fam$variance(mu[k])), n)
      R <- matrix(alpha_new, n, n); diag(R) <- 1
      Vinv <- solve(A %*% R %*% A)
      B <- B + t(D) %*% Vinv %*% D
      U <- U + t(D) %*% Vinv %*% (y[k] - mu[k])
    }
    step <- as.vector(solve(B, U))
    beta <- beta + step
    change <- max(abs(c(step, alpha_new - alpha)))
    alpha <- alpha_new
    if (change < 1e-14) break
  }
  eta <- as.vector(X %*% beta) + off
  mu <- fam$linkinv(eta)
  e <- (y - mu) / sqrt(fam$variance(mu))
  list(coef = unname(beta), alpha = alpha, scale = sum(e^2) / (N - p), iterations = it)
}

# ---- cases --------------------------------------------------------------------------
specs <- list(
  binomial_independence = list(d = "admissions", id = "team_id", f = admitted ~ arm + stratum + pre_prop, fam = binomial(), cs = "independence"),
  binomial_exchangeable = list(d = "admissions", id = "team_id", f = admitted ~ arm + stratum + pre_prop, fam = binomial(), cs = "exchangeable"),
  poisson_independence = list(d = "admissions", id = "team_id", f = bed_days ~ arm + pre_prop + sex, fam = poisson(), cs = "independence"),
  poisson_exchangeable = list(d = "admissions", id = "team_id", f = bed_days ~ arm + pre_prop + sex, fam = poisson(), cs = "exchangeable"),
  gaussian_exchangeable = list(d = "admissions", id = "team_id", f = age ~ arm + sex, fam = gaussian(), cs = "exchangeable"),
  ohio_exchangeable = list(d = "ohio", id = "id", f = resp ~ age + smoke + age:smoke, fam = binomial(), cs = "exchangeable"),
  ohio_independence = list(d = "ohio", id = "id", f = resp ~ age + smoke + age:smoke, fam = binomial(), cs = "independence"),
  dietox_exchangeable = list(d = "dietox", id = "Pig", f = Weight ~ Time + Evit + Cu, fam = gaussian(), cs = "exchangeable"),
  dietox_feed_exchangeable = list(d = "dietox", id = "Pig", f = Weight ~ Time + Feed, fam = gaussian(), cs = "exchangeable"),
  seizure_exchangeable = list(d = "seizure", id = "id", f = y ~ x + trt + x:trt, off = "t", fam = poisson(), cs = "exchangeable"),
  epil_exchangeable = list(d = "epil", id = "subject", f = y ~ lbase * trt + lage + V4, fam = poisson(), cs = "exchangeable")
)

out <- list()
for (name in names(specs)) {
  message(name, " ", format(Sys.time()))
  s <- specs[[name]]
  dat <- datasets[[s$d]]
  vars <- c(all.vars(s$f), s$id, s$off)
  dat <- dat[complete.cases(dat[, vars]), ]  # as geeglm's na.omit; recorded as n_excluded
  dat$cid <- match(dat[[s$id]], unique(dat[[s$id]]))  # geeglm needs a numeric id
  off <- if (is.null(s$off)) rep(0, nrow(dat)) else log(dat[[s$off]])
  dat$off_ <- off
  fit <- geeglm(s$f, id = cid, data = dat, family = s$fam, corstr = s$cs, offset = off_,
                control = ctrl)
  jack <- geeglm(s$f, id = cid, data = dat, family = s$fam, corstr = s$cs, offset = off_,
                 control = ctrl, std.err = "jack")
  X <- model.matrix(fit)
  alpha <- if (s$cs == "exchangeable") fit$geese$alpha[[1]] else 0
  sw <- sandwiches(X, fit$y, dat$cid, off, coef(fit), alpha, s$fam)
  sas <- gee_sas(X, fit$y, dat$cid, off, s$fam, s$cs)
  sas_sw <- sandwiches(X, fit$y, dat$cid, off, sas$coef, sas$alpha, s$fam)
  out[[name]] <- list(
    data = s$d,
    cluster = s$id,
    exposure = if (is.null(s$off)) NULL else s$off,
    family = s$fam$family,
    formula = paste(deparse(s$f), collapse = ""),
    cov_struct = s$cs,
    nobs = nrow(dat),
    n_excluded = nrow(datasets[[s$d]]) - nrow(dat),
    n_clusters = length(unique(dat$cid)),
    terms = names(coef(fit)),
    coef = unname(coef(fit)),
    alpha = alpha,
    scale = fit$geese$gamma[[1]],
    geepack_error = fit$geese$error,
    geepack_robust_se = unname(sqrt(diag(vcov(fit)))),
    geepack_jack_cov = unname(jack$geese$vbeta.ajs),
    cov_robust = sw$robust,
    cov_mancl_derouen = sw$md,
    cov_kauermann_carroll = sw$kc,
    cov_fay_graubard = sw$fg,
    sas = list(coef = sas$coef, alpha = sas$alpha, scale = sas$scale,
               iterations = sas$iterations, cov_robust = sas_sw$robust,
               cov_mancl_derouen = sas_sw$md, cov_kauermann_carroll = sas_sw$kc,
               cov_fay_graubard = sas_sw$fg)
  )
}
out$n_clusters <- length(unique(adm$team_id))
out$nobs <- nrow(adm)
out$geepack_version <- as.character(packageVersion("geepack"))

write_json(out, "tests/reference/gee.json", digits = NA, auto_unbox = TRUE, pretty = TRUE,
           null = "null")
