# Reference values for crtstats.lmm (random-intercept linear mixed model).
#
# Run from the project root:  Rscript tests/reference/lmm.R
# Writes tests/reference/lmm.json and the data sets it simulates under
# tests/reference/data/. Packages: lme4, lmerTest, pbkrtest, jsonlite.
#
# Each case records, at full precision: fixed effects, the model-based and the
# Kenward-Roger adjusted covariance (pbkrtest::vcovAdj), KR df per coefficient
# (pbkrtest::Lb_ddf) and Satterthwaite df (lmerTest), p-values, variance
# components, the REML criterion / log-likelihood, predicted random effects with their
# conditional SDs, and KR / Satterthwaite inference for multi-term contrasts
# (lmerTest::contest1D). lme4 is run with tight optimiser tolerances so that the
# reference sits at the optimum to many more digits than the default settings give.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(jsonlite)
})

data_dir <- file.path("tests", "reference", "data")
out_path <- file.path("tests", "reference", "lmm.json")

tight <- lmerControl(
  optimizer = "nloptwrap",
  optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-16, xtol_rel = 1e-14,
                 ftol_rel = 1e-16, maxeval = 100000),
  calc.derivs = FALSE,
  check.conv.singular = "ignore"
)

contrast_values <- function(fit, L, vadj) {
  kr <- contest1D(fit, L, ddf = "Kenward-Roger")
  sat <- contest1D(fit, L, ddf = "Satterthwaite")
  list(
    L = L,
    estimate = kr$Estimate,
    kr_se = kr[["Std. Error"]],
    kr_df = kr$df,
    kr_df_pbkrtest = pbkrtest::Lb_ddf(L, as.matrix(vcov(fit)), vadj),
    kr_p = kr[["Pr(>|t|)"]],
    sat_se = sat[["Std. Error"]],
    sat_df = sat$df,
    sat_p = sat[["Pr(>|t|)"]]
  )
}

coef_table <- function(fit, ddf) {
  tab <- coef(summary(fit, ddf = ddf))
  list(se = unname(tab[, "Std. Error"]), df = unname(tab[, "df"]),
       t = unname(tab[, "t value"]), p = unname(tab[, "Pr(>|t|)"]))
}

reference_case <- function(formula, data, cluster, contrasts, reml = TRUE) {
  message("fitting ", deparse(formula), " on ", nrow(data), " rows")
  fit <- lmerTest::lmer(formula, data = data, REML = reml, control = tight)
  # vcovAdj is computed once per case (it forms n x n matrices) and reused for the
  # pbkrtest df; lmerTest's own Kenward-Roger route is run as well, as a second check.
  vadj <- if (reml) pbkrtest::vcovAdj(fit) else NULL
  vc <- as.data.frame(VarCorr(fit))
  re <- ranef(fit, condVar = TRUE)[[cluster]]
  cond_sd <- sqrt(as.numeric(attr(re, "postVar")))
  out <- list(
    formula = paste(deparse(formula), collapse = " "),
    cluster = cluster,
    reml = reml,
    nobs = nobs(fit),
    n_clusters = unname(ngrps(fit)[cluster]),
    names = names(fixef(fit)),
    beta = unname(fixef(fit)),
    theta = unname(getME(fit, "theta")),
    var_cluster = vc$vcov[vc$grp == cluster],
    var_residual = vc$vcov[vc$grp == "Residual"],
    singular = isSingular(fit),
    deviance_criterion = if (reml) REMLcrit(fit) else deviance(fit),
    loglik = as.numeric(logLik(fit)),
    vcov = unname(as.matrix(vcov(fit))),
    ranef_cluster = rownames(re),
    ranef = unname(re[, 1]),
    ranef_sd = cond_sd,
    satterthwaite = coef_table(fit, "Satterthwaite"),
    contrasts = lapply(contrasts, function(L) {
      if (reml) contrast_values(fit, L, vadj) else {
        sat <- contest1D(fit, L, ddf = "Satterthwaite")
        list(L = L, estimate = sat$Estimate, sat_se = sat[["Std. Error"]],
             sat_df = sat$df, sat_p = sat[["Pr(>|t|)"]])
      }
    })
  )
  if (reml) {
    p <- length(fixef(fit))
    out$vcov_kr <- unname(as.matrix(vadj))
    out$kr_df_pbkrtest <- sapply(seq_len(p), function(j) {
      L <- numeric(p); L[j] <- 1; pbkrtest::Lb_ddf(L, as.matrix(vcov(fit)), vadj)
    })
    out$kenward_roger <- coef_table(fit, "Kenward-Roger")
    # a joint (q = 2) hypothesis from the first two contrasts: KR df of the F test
    L2 <- rbind(contrasts[[1]], contrasts[[2]])
    out$kr_joint <- list(L = L2, df = pbkrtest::Lb_ddf(L2, as.matrix(vcov(fit)), vadj))
  }
  out
}

# 1. The example trial's fidelity totals (review as a factor baseline / 6m / 12m;
#    rows with a missing total are dropped by lmer, as by crtstats).
fid <- read.csv(file.path(data_dir, "lmm_fidelity.csv"))
fid$review <- factor(fid$review, levels = c("baseline", "6m", "12m"))
fid$arm <- factor(fid$arm, levels = c("control", "intervention"))
p_fid <- 13  # (Intercept), arm, review 6m/12m, 7 strata, arm:review 6m/12m
L_fid_12 <- numeric(p_fid); L_fid_12[c(2, 13)] <- 1   # arm effect at 12 months
L_fid_6 <- numeric(p_fid); L_fid_6[c(2, 12)] <- 1     # arm effect at 6 months
L_fid_ch <- numeric(p_fid); L_fid_ch[c(13, 12)] <- c(1, -1)  # 12m minus 6m interaction
fidelity <- reference_case(total ~ arm * review + stratum + (1 | team_id), fid, "team_id",
                           list(arm_12m = L_fid_12, arm_6m = L_fid_6, change = L_fid_ch))

# 2. Unequal cluster sizes in the hundreds: 20 clusters, cluster-level arm, a
#    person-level continuous and binary covariate.
set.seed(20261122)
n_cl <- 20
sizes <- sample(100:400, n_cl, replace = TRUE)
cl <- data.frame(cluster = sprintf("C%02d", seq_len(n_cl)),
                 arm = rep(c(0, 1), each = n_cl / 2), b = rnorm(n_cl, sd = 1.2))
unequal <- cl[rep(seq_len(n_cl), sizes), ]
unequal$x <- rnorm(nrow(unequal))
unequal$female <- rbinom(nrow(unequal), 1, 0.55)
unequal$y <- 20 + 1.5 * unequal$arm + 2 * unequal$x - 0.7 * unequal$female +
  unequal$b + rnorm(nrow(unequal), sd = 4)
unequal$y <- round(unequal$y, 6)
unequal$x <- round(unequal$x, 6)
unequal <- unequal[, c("cluster", "arm", "x", "female", "y")]
rownames(unequal) <- NULL
write.csv(unequal, file.path(data_dir, "lmm_unequal.csv"), row.names = FALSE)
unequal <- read.csv(file.path(data_dir, "lmm_unequal.csv"))
p_un <- 5  # (Intercept), arm, x, female, arm:x
unequal_ref <- reference_case(
  y ~ arm * x + female + (1 | cluster), unequal, "cluster",
  list(arm_at_x1 = c(0, 1, 0, 0, 1), x_plus_female = c(0, 0, 1, 1, 0)))
unequal_ml <- reference_case(
  y ~ arm * x + female + (1 | cluster), unequal, "cluster",
  list(arm_at_x1 = c(0, 1, 0, 0, 1), x_plus_female = c(0, 0, 1, 1, 0)), reml = FALSE)

# 3. A fit on the boundary: no between-cluster variation, 12 clusters of 8.
#    The first seed from 1 whose REML fit is singular is used.
make_boundary <- function(seed) {
  set.seed(seed)
  d <- data.frame(cluster = rep(sprintf("K%02d", 1:12), each = 8),
                  arm = rep(rep(c(0, 1), each = 8), 6))
  d$x <- round(rnorm(nrow(d)), 6)
  d$y <- round(10 + 0.5 * d$arm + d$x + rnorm(nrow(d), sd = 2), 6)
  d
}
seed <- 1
repeat {
  bnd <- make_boundary(seed)
  f <- lmer(y ~ arm + x + (1 | cluster), data = bnd, control = tight)
  if (getME(f, "theta") == 0) break
  seed <- seed + 1
  if (seed > 200) stop("no boundary fit among seeds 1 to 200")
}
message("boundary data: seed ", seed)
write.csv(bnd, file.path(data_dir, "lmm_boundary.csv"), row.names = FALSE)
bnd <- read.csv(file.path(data_dir, "lmm_boundary.csv"))
boundary <- reference_case(y ~ arm + x + (1 | cluster), bnd, "cluster",
                           list(arm_plus_x = c(0, 1, 1), arm_minus_x = c(0, 1, -1)))
boundary$seed <- seed

# 4. A data set shipped with lme4: sleepstudy, a random intercept per subject.
data("sleepstudy", package = "lme4")
sleep <- data.frame(Subject = as.character(sleepstudy$Subject),
                    Days = sleepstudy$Days, Reaction = sleepstudy$Reaction)
write.csv(sleep, file.path(data_dir, "lmm_sleepstudy.csv"), row.names = FALSE)
sleep_ref <- reference_case(Reaction ~ Days + (1 | Subject), sleep, "Subject",
                            list(mean_at_day5 = c(1, 5), day_slope_x2 = c(0, 2)))

reference <- list(
  versions = list(R = R.version.string,
                  lme4 = as.character(packageVersion("lme4")),
                  lmerTest = as.character(packageVersion("lmerTest")),
                  pbkrtest = as.character(packageVersion("pbkrtest"))),
  fidelity = fidelity,
  unequal = unequal_ref,
  unequal_ml = unequal_ml,
  boundary = boundary,
  sleepstudy = sleep_ref
)
write_json(reference, out_path, digits = NA, auto_unbox = TRUE, pretty = TRUE)
