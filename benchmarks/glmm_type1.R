# Type I error of candidate analyses of the admission GLMM at 25 teams, by simulation.
#
# Usage: Rscript benchmarks/glmm_type1.R SIMS OUT.csv [SEED] [RISK] [ATTRITION]
#
# The design is that of `benchmarks/bench_power.py --validity` (crtstats.power's null
# trials): 25 teams, 15 intervention and 10 control, in 8 strata of 4, 3, ..., 3 teams,
# allocated within strata with the intervention places shared in proportion to the
# stratum sizes (remainders to strata drawn at random); service users per team and
# period rounded gamma(mean 60, CV 0.45), at least 1; follow-up users thinned by
# ATTRITION (default 0); team effects on the logit scale with variance
# tau^2 = 0.05 (pi^2 / 3) / 0.95 (latent ICC 0.05) in the pre and follow-up periods,
# correlated 0.8; risk RISK (default 0.30) in both periods; no arm effect.
#
# Each trial is analysed with two formulas on the follow-up users:
#   "arm + stratum"              (the power plan's and the validity run's GLMM),
#   "arm + stratum + pre_prop"   (analyse_admissions' primary; pre_prop the team's
#                                 pre-period proportion admitted),
# and four methods, each with a t test on the between-within df (G - p_b: 16 and 15):
#   laplace_ml   lme4::glmer, Laplace ML (nAGQ = 1);
#   tmb_reml     glmmTMB(..., REML = TRUE): the Laplace approximation of the restricted
#                likelihood (beta integrated out with b), Wald SE from the joint Hessian;
#   pql_reml     penalised quasi-likelihood with REML for the working LMM, the scale
#                fixed at 1 (SAS GLIMMIX's default RSPL, as in Li and Redden 2015);
#   laplace_ml_z Laplace ML with a normal reference (to show the df's share).
# All covariates are team-level, so every fit uses the per-team binomial counts
# cbind(admitted, not admitted): the same likelihood, Laplace and PQL estimates as the
# per-user fit, and about 60 times faster.
#
# Writes one row per trial, formula and method (estimate, SE, df, p, team variance);
# prints the type I error at 5% with its Monte Carlo SE.

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
})

args <- commandArgs(trailingOnly = TRUE)
sims <- as.integer(args[[1]])
out <- args[[2]]
seed <- if (length(args) >= 3) as.integer(args[[3]]) else 20140301L
risk <- if (length(args) >= 4) as.numeric(args[[4]]) else 0.30
attrition <- if (length(args) >= 5) as.numeric(args[[5]]) else 0
set.seed(seed)

n_teams <- 25; n_int <- 15; n_strata <- 8
icc <- 0.05; tau2 <- icc * (pi^2 / 3) / (1 - icc); r <- 0.8
mean_size <- 60; cv <- 0.45
stratum <- sort((seq_len(n_teams) - 1) %% n_strata)

allocate <- function() {
  sizes <- tabulate(stratum + 1, n_strata)
  share <- sizes * n_int / n_teams
  base <- floor(share)
  order <- order(-(share - base), runif(n_strata))
  extra <- n_int - sum(base)
  base[order[seq_len(extra)]] <- base[order[seq_len(extra)]] + 1
  treated <- logical(n_teams)
  for (s in seq_len(n_strata)) {
    members <- which(stratum == s - 1)
    treated[members[sample.int(length(members), base[s])]] <- TRUE
  }
  treated
}

simulate_trial <- function() {
  treated <- allocate()
  size <- pmax(1, round(rgamma(n_teams, shape = 1 / cv^2, scale = mean_size * cv^2)))
  follow <- if (attrition > 0) rbinom(n_teams, size, 1 - attrition) else size
  z1 <- rnorm(n_teams); z2 <- rnorm(n_teams)
  u_pre <- sqrt(tau2) * z1
  u_fu <- sqrt(tau2) * (r * z1 + sqrt(1 - r^2) * z2)
  lp <- qlogis(risk)
  y_pre <- rbinom(n_teams, size, plogis(lp + u_pre))
  y <- rbinom(n_teams, follow, plogis(lp + u_fu))
  d <- data.frame(team_id = factor(seq_len(n_teams)),
                  arm = factor(ifelse(treated, "intervention", "control"),
                               c("control", "intervention")),
                  stratum = factor(stratum), y = y, n = follow, pre_prop = y_pre / size)
  d[d$n > 0, ]
}

# PQL with REML for the working LMM, scale fixed at 1: with team-level covariates the
# working model is z_i = x_i' beta + b_i + e_i, var(e_i) = 1 / (n_i mu_i (1 - mu_i)).
pql_reml <- function(X, y, n, tol = 1e-10, maxit = 100) {
  fit0 <- glm.fit(X, cbind(y, n - y), family = binomial())
  eta <- drop(X %*% fit0$coefficients); tau2 <- 0.1
  for (it in seq_len(maxit)) {
    mu <- plogis(eta); w <- n * mu * (1 - mu)
    z <- eta + (y - n * mu) / w
    reml <- function(lt) {
      v <- exp(lt) + 1 / w
      Xw <- X / v
      A <- crossprod(X, Xw)
      beta <- solve(A, crossprod(Xw, z))
      res <- z - X %*% beta
      0.5 * (sum(log(v)) + determinant(A)$modulus + sum(res^2 / v))
    }
    opt <- optimize(reml, c(log(1e-8), log(50)), tol = 1e-10)
    tau2_new <- if (reml(log(1e-8)) <= opt$objective) 0 else exp(opt$minimum)
    v <- tau2_new + 1 / w
    A <- crossprod(X, X / v)
    beta <- solve(A, crossprod(X / v, z))
    blup <- tau2_new / v * drop(z - X %*% beta)
    eta_new <- drop(X %*% beta) + blup
    done <- max(abs(eta_new - eta)) < tol && abs(tau2_new - tau2) < tol
    eta <- eta_new; tau2 <- tau2_new
    if (done) break
  }
  list(beta = drop(beta), se = sqrt(diag(solve(A))), tau2 = tau2)
}

fit_all <- function(d, rhs) {
  f <- as.formula(paste("cbind(y, n - y) ~", rhs, "+ (1 | team_id)"))
  X <- model.matrix(as.formula(paste("~", rhs)), d)
  df <- nrow(d) - ncol(X)
  j <- "armintervention"
  rows <- list()
  add <- function(method, est, se, tau2, df_used) {
    p <- 2 * pt(-abs(est / se), df_used)
    rows[[length(rows) + 1]] <<- data.frame(method = method, estimate = est, se = se,
                                            df = df_used, p = p, tau2 = tau2)
  }
  g <- tryCatch(suppressMessages(suppressWarnings(
    glmer(f, d, family = binomial, control = glmerControl(optimizer = "bobyqa")))),
    error = function(e) NULL)
  if (!is.null(g)) {
    est <- fixef(g)[[j]]; se <- sqrt(diag(vcov(g)))[[j]]; t2 <- VarCorr(g)$team_id[1]
    add("laplace_ml", est, se, t2, df)
    add("laplace_ml_z", est, se, t2, Inf)
  }
  tm <- tryCatch(suppressWarnings(glmmTMB(f, d, family = binomial, REML = TRUE)),
                 error = function(e) NULL)
  if (!is.null(tm)) {
    est <- fixef(tm)$cond[[j]]; se <- sqrt(diag(vcov(tm)$cond))[[j]]
    add("tmb_reml", est, se, VarCorr(tm)$cond$team_id[1], df)
  }
  pq <- tryCatch(pql_reml(X, d$y, d$n), error = function(e) NULL)
  if (!is.null(pq)) add("pql_reml", pq$beta[[j]], pq$se[[j]], pq$tau2, df)
  do.call(rbind, rows)
}

formulas <- c(stratum = "arm + stratum", pre_prop = "arm + stratum + pre_prop")
results <- vector("list", sims)
for (s in seq_len(sims)) {
  d <- simulate_trial()
  results[[s]] <- do.call(rbind, lapply(names(formulas), function(k) {
    cbind(sim = s, formula = k, fit_all(d, formulas[[k]]))
  }))
  if (s %% 100 == 0 || s == sims) {
    all <- do.call(rbind, results[seq_len(s)])
    write.csv(all, out, row.names = FALSE)
  }
}

all <- do.call(rbind, results)
summ <- aggregate(p ~ formula + method, all, function(p) c(
  n = length(p), size = mean(p < 0.05), mcse = sqrt(mean(p < 0.05) * (1 - mean(p < 0.05)) /
                                                       length(p))))
boundary <- aggregate(tau2 ~ formula + method, all, function(t) mean(t < 1e-6))
cat(sprintf("%d null trials, risk %.2f, attrition %.2f, tau^2 %.4f\n", sims, risk,
            attrition, tau2))
for (i in seq_len(nrow(summ))) {
  cat(sprintf("%-9s %-13s n %4d  type I %.4f (MC SE %.4f)  tau2 = 0 in %.3f\n",
              summ$formula[i], summ$method[i], summ$p[i, "n"], summ$p[i, "size"],
              summ$p[i, "mcse"], boundary$tau2[i]))
}
