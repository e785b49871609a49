# Reference values for crtstats.icc and crtstats.design_effect (tests/test_icc.py).
#
# Balanced data: lme4's Dyestuff (6 batches x 5), written to data/icc_dyestuff.csv.
# Unbalanced data: data/gee_admissions.csv (the example trial's follow-up users,
# 25 teams of 11 to 97): age (continuous) and admitted (binary).
#
# The one-way ANOVA estimator and its intervals are computed from the formulas:
#   exact interval, unbalanced: Wald A (1940) Ann Math Stat 11:96-100, solved with uniroot
#   exact interval, balanced:   the F interval (Searle 1971), also from psych::ICC (ICC1)
#   Smith CAB (1956) Ann Hum Genet 21:363-373 large-sample variance (Zou & Donner 2004)
# and lme4's REML ICC where it is the same quantity (balanced, positive estimate).
#
# Run from the repository root: Rscript tests/reference/icc.R

suppressPackageStartupMessages({
  library(lme4)
  library(psych)
  library(jsonlite)
})

dye <- lme4::Dyestuff
write.csv(data.frame(batch = as.character(dye$Batch), yield = dye$Yield),
          "tests/reference/data/icc_dyestuff.csv", row.names = FALSE)
adm <- read.csv("tests/reference/data/gee_admissions.csv", stringsAsFactors = FALSE)

anova_parts <- function(y, g) {
  g <- factor(g, levels = unique(g))
  ni <- as.vector(table(g))
  k <- length(ni); N <- length(y)
  means <- as.vector(tapply(y, g, mean))
  grand <- mean(y)
  msb <- sum(ni * (means - grand)^2) / (k - 1)
  msw <- sum((y - means[as.integer(g)])^2) / (N - k)
  n0 <- (N - sum(ni^2) / N) / (k - 1)
  rho <- (msb - msw) / (msb + (n0 - 1) * msw)
  list(ni = ni, k = k, N = N, means = means, msb = msb, msw = msw, n0 = n0, rho = rho)
}

wald_ci <- function(a, level = 0.95) {
  Fth <- function(theta) {
    w <- a$ni / (1 + a$ni * theta)
    yw <- sum(w * a$means) / sum(w)
    sum(w * (a$means - yw)^2) / (a$k - 1) / a$msw
  }
  lo_bound <- -1 / max(a$ni)
  solve_for <- function(target) {
    lo <- lo_bound + 1e-12
    if (Fth(lo) <= target) return(lo_bound)
    uniroot(function(t) Fth(t) - target, c(lo, 1e6), tol = 1e-14)$root
  }
  tail <- (1 - level) / 2
  th <- c(solve_for(qf(1 - tail, a$k - 1, a$N - a$k)), solve_for(qf(tail, a$k - 1, a$N - a$k)))
  th / (1 + th)
}

balanced_f_ci <- function(a, level = 0.95) {
  Fobs <- a$msb / a$msw
  tail <- (1 - level) / 2
  FL <- Fobs / qf(1 - tail, a$k - 1, a$N - a$k)
  FU <- Fobs / qf(tail, a$k - 1, a$N - a$k)
  n <- a$ni[1]
  c((FL - 1) / (FL + n - 1), (FU - 1) / (FU + n - 1))
}

smith_ci <- function(a, level = 0.95) {
  rho <- a$rho; n0 <- a$n0; k <- a$k; N <- a$N; ni <- a$ni
  v <- 2 * (1 - rho)^2 / n0^2 * (
    (1 + rho * (n0 - 1))^2 / (N - k) +
      ((k - 1) * (1 - rho) * (1 + rho * (2 * n0 - 1)) +
         rho^2 * (sum(ni^2) - 2 * sum(ni^3) / N + sum(ni^2)^2 / N^2)) / (k - 1)^2)
  z <- qnorm(0.5 + level / 2)
  c(rho - z * sqrt(v), rho + z * sqrt(v))
}

out <- list()

# balanced: Dyestuff
a <- anova_parts(dye$Yield, dye$Batch)
wide <- matrix(dye$Yield, ncol = 5, byrow = TRUE)  # batches in rows, 5 preparations
ps <- psych::ICC(wide, lmer = FALSE)$results
fit <- lmer(Yield ~ 1 + (1 | Batch), data = dye, REML = TRUE)
vc <- as.data.frame(VarCorr(fit))$vcov
out$dyestuff <- list(
  icc = a$rho, msb = a$msb, msw = a$msw, n0 = a$n0,
  wald_ci = wald_ci(a), f_ci = balanced_f_ci(a), wald_ci_90 = wald_ci(a, 0.90),
  psych_icc1 = ps$ICC[1], psych_icc1_ci = c(ps$`lower bound`[1], ps$`upper bound`[1]),
  lme4_icc = vc[1] / sum(vc),
  smith_ci = smith_ci(a)
)

# unbalanced, continuous: age
a <- anova_parts(adm$age, adm$team_id)
out$age <- list(icc = a$rho, msb = a$msb, msw = a$msw, n0 = a$n0,
                wald_ci = wald_ci(a), smith_ci = smith_ci(a))

# unbalanced, binary: admitted
a <- anova_parts(adm$admitted, adm$team_id)
out$admitted <- list(icc = a$rho, msb = a$msb, msw = a$msw, n0 = a$n0,
                     wald_ci = wald_ci(a), smith_ci = smith_ci(a))

# design effect
out$design_effect <- list(
  list(m = 15, cv = 0, icc = 0.05, deff = 1 + ((0^2 + 1) * 15 - 1) * 0.05),
  list(m = 55.52, cv = 0.4708, icc = 0.031, deff = 1 + ((0.4708^2 + 1) * 55.52 - 1) * 0.031)
)

write_json(out, "tests/reference/icc.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
