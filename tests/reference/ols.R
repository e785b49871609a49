# Reference values for crtstats.ols (classical, CR1, CR2) and the fidelity ANCOVA.
#
# Run from the repository root:  Rscript tests/reference/ols.R
# Needs: clubSandwich, jsonlite, lme4, lmerTest and pbkrtest (for the fidelity LMM).
# Writes tests/reference/ols.json and the CSV files under tests/reference/data/ that
# the tests read (the tests never need R).
#
# Data sets
#   mortality   clubSandwich::MortalityRates, motor-vehicle deaths: 51 states x 27 years,
#               state and year fixed effects, clusters = states (each cluster spanned by
#               its state dummy, so I - H_jj is singular and CR2 uses a generalised
#               inverse square root).
#   unequal     simulated here: 12 clusters of 35 to 420 rows (2,535 rows), cluster-level
#               arm, individual covariate.
#   admissions  the shipped example trial: linear probability model of admission,
#               arm x period + stratum + age + sex, clusters = 25 teams.
#   ancova      the shipped example trial: team-level ANCOVA of the 12-month fidelity
#               total (and each domain mean) on arm, baseline and stratum; one row per
#               team, so CR2 is HC2 with Bell-McCaffrey df (cluster = team).
#   fidelity_lmm the shipped example trial: outcome ~ arm * review + stratum + (1 | team_id)
#               by REML, arm effect at 6m and 12m with Kenward-Roger df.
# Totals and domain means are computed here with the rule of crtstats.score_fidelity's
# default: no score when any of its items is missing. Each lm fit uses the data as read
# back from the committed CSV, so that R and the tests see the same numbers.

suppressPackageStartupMessages({
  library(clubSandwich)
  library(jsonlite)
  library(lmerTest)
})
invisible(Sys.setlocale("LC_COLLATE", "C"))  # factor levels in code-point order, as Python sorts

out_dir <- file.path("tests", "reference")
data_dir <- file.path(out_dir, "data")
example_dir <- file.path("crtstats", "datasets", "data")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)

as_factors <- function(d, cols) {
  for (v in cols) d[[v]] <- factor(d[[v]], levels = sort(unique(as.character(d[[v]]))))
  d
}

# Per-coefficient results for one covariance type.
coef_block <- function(fit, d, cluster, type) {
  if (type == "classical") {
    s <- summary(fit)$coefficients
    return(list(se = unname(s[, 2]), df = rep(fit$df.residual, nrow(s)),
                pvalue = unname(s[, 4]), vcov = unname(vcov(fit))))
  }
  V <- vcovCR(fit, cluster = d[[cluster]], type = type)
  test <- if (type == "CR2") "Satterthwaite" else "naive-t"
  ct <- coef_test(fit, vcov = V, test = test)
  df <- if (type == "CR2") ct$df_Satt else ct$df_t
  p <- if (type == "CR2") ct$p_Satt else ct$p_t
  list(se = ct$SE, df = df, pvalue = p, vcov = unname(as.matrix(V)))
}

# One CR2 contrast: linear_contrast (Satterthwaite) and Wald_test (HTZ, q = 1).
contrast_block <- function(fit, d, cluster, weights) {
  V <- vcovCR(fit, cluster = d[[cluster]], type = "CR2")
  L <- matrix(0, nrow = 1, ncol = length(coef(fit)), dimnames = list(NULL, names(coef(fit))))
  L[1, names(weights)] <- unlist(weights)
  lc <- linear_contrast(fit, vcov = V, contrasts = L, test = "Satterthwaite", level = 0.95)
  wt <- Wald_test(fit, constraints = L, vcov = V, test = "HTZ")
  list(weights = weights, estimate = lc$Est, se = lc$SE, df = lc$df,
       conf_low = lc$CI_L, conf_high = lc$CI_U,
       wald_df_denom = wt$df_denom, wald_F = wt$Fstat, pvalue = wt$p_val)
}

reference <- function(formula, d, cluster, csv, contrasts = list()) {
  fit <- lm(as.formula(formula), data = d)
  stopifnot(!any(is.na(coef(fit))))
  list(
    formula = formula, csv = csv, cluster = cluster,
    nobs = nobs(fit), n_clusters = length(unique(d[[cluster]])),
    coef_names = names(coef(fit)), coef = unname(coef(fit)),
    sigma = summary(fit)$sigma, loglik = as.numeric(logLik(fit)),
    classical = coef_block(fit, d, cluster, "classical"),
    CR1 = coef_block(fit, d, cluster, "CR1"),
    CR2 = coef_block(fit, d, cluster, "CR2"),
    contrasts = lapply(contrasts, function(w) contrast_block(fit, d, cluster, w))
  )
}

# ---- mortality: clubSandwich's panel example -------------------------------------
data(MortalityRates, package = "clubSandwich")
mv <- subset(MortalityRates, cause == "Motor Vehicle")
mv <- data.frame(state = sprintf("S%02d", mv$state), year = sprintf("Y%d", mv$year),
                 legal = mv$legal, beertaxa = mv$beertaxa, mrate = mv$mrate)
write.csv(mv, file.path(data_dir, "ols_mortality.csv"), row.names = FALSE)
mv <- read.csv(file.path(data_dir, "ols_mortality.csv"))  # fit exactly what the tests read
mv <- as_factors(mv, c("state", "year"))
ref_mortality <- reference(
  "mrate ~ legal + beertaxa + state + year", mv, "state", "ols_mortality.csv",
  contrasts = list(list(legal = 1), list(legal = 1, beertaxa = -1))
)

# ---- unequal: simulated clusters of very different sizes ----------------------------
set.seed(20260311)
sizes <- c(35, 60, 90, 120, 150, 180, 210, 250, 300, 340, 380, 420)
cl <- rep(sprintf("C%02d", seq_along(sizes)), times = sizes)
arm_cl <- rep(c("control", "treated"), length.out = length(sizes))
u <- rnorm(length(sizes), sd = 0.6)
idx <- rep(seq_along(sizes), times = sizes)
x <- rnorm(length(cl)) + 0.3 * u[idx]
z <- rbinom(length(cl), 1, 0.4)
arm <- arm_cl[idx]
y <- 1 + 0.4 * (arm == "treated") + 0.5 * x - 0.3 * z + u[idx] +
  rnorm(length(cl), sd = 1 + 0.5 * z)
unequal <- data.frame(cluster = cl, arm = arm, x = x, z = z, y = y)
write.csv(unequal, file.path(data_dir, "ols_unequal.csv"), row.names = FALSE)
unequal <- read.csv(file.path(data_dir, "ols_unequal.csv"))
unequal <- as_factors(unequal, c("cluster", "arm"))
ref_unequal <- reference(
  "y ~ arm + x + z + arm:x", unequal, "cluster", "ols_unequal.csv",
  contrasts = list(list(armtreated = 1, `armtreated:x` = 1), list(x = 1, z = 1))
)

# ---- admissions: linear probability model on the shipped example --------------------
teams <- read.csv(file.path(example_dir, "example_teams.csv"), stringsAsFactors = FALSE)
adm <- read.csv(file.path(example_dir, "example_admissions.csv"), stringsAsFactors = FALSE)
adm <- merge(adm, teams[, c("team_id", "arm", "stratum")], by = "team_id", sort = FALSE)
adm <- as_factors(adm, c("team_id", "arm", "stratum", "period", "sex"))
ref_admissions <- reference(
  "admitted ~ arm * period + stratum + age + sex", adm, "team_id", "example_admissions.csv",
  contrasts = list(list(armintervention = 1, `armintervention:periodpre` = 1),
                   list(`armintervention:periodpre` = 1))
)

# ---- ancova: the fidelity ANCOVA of the shipped example -----------------------------
fid <- read.csv(file.path(example_dir, "example_fidelity.csv"), stringsAsFactors = FALSE)
items <- sprintf("item_%02d", 1:39)
domains <- list(referrals_access = 1:10, content_delivery = 11:26,
                staffing_procedures = 27:36, location_timing = 37:39)
# no total (or domain score) when any of its items is missing
fid$total <- rowSums(fid[, items])
for (dn in names(domains)) {
  fid[[paste0(dn, "_mean")]] <- rowMeans(fid[, items[domains[[dn]]]])
}
outcomes <- c("total", paste0(names(domains), "_mean"))
wide <- teams[, c("team_id", "arm", "stratum")]
for (v in outcomes) {
  b <- fid[fid$review == "baseline", c("team_id", v)]
  f <- fid[fid$review == "12m", c("team_id", v)]
  names(b)[2] <- paste0(v, "_baseline")
  names(f)[2] <- paste0(v, "_12m")
  wide <- merge(merge(wide, b, by = "team_id", all.x = TRUE), f, by = "team_id", all.x = TRUE)
}
wide <- wide[order(wide$team_id), ]
write.csv(wide, file.path(data_dir, "ols_fidelity_ancova.csv"), row.names = FALSE, na = "")
wide <- read.csv(file.path(data_dir, "ols_fidelity_ancova.csv"))
wide <- as_factors(wide, c("arm", "stratum"))
ref_ancova <- list()
for (v in outcomes) {
  dv <- wide[complete.cases(wide[, c(paste0(v, "_baseline"), paste0(v, "_12m"))]), ]
  ref_ancova[[v]] <- reference(
    sprintf("%s_12m ~ arm + %s_baseline + stratum", v, v), dv, "team_id",
    "ols_fidelity_ancova.csv"
  )
  ref_ancova[[v]]$n_excluded <- nrow(wide) - nrow(dv)
}

# ---- fidelity LMM (the other half of crtstats.analyse_fidelity) ---------------------
# total (or domain mean) ~ arm * review + stratum + (1 | team_id), REML, arm effect at
# 6m and 12m with Kenward-Roger df (lmerTest::contest -> pbkrtest).
long <- merge(fid[, c("team_id", "review", outcomes)], teams[, c("team_id", "arm", "stratum")],
              by = "team_id")
long$review <- factor(long$review, levels = c("baseline", "6m", "12m"))
long$arm <- factor(long$arm, levels = c("control", "intervention"))
long$stratum <- factor(long$stratum)
ref_lmm <- list()
for (v in outcomes) {
  fit <- lmer(as.formula(sprintf("%s ~ arm * review + stratum + (1 | team_id)", v)),
              data = long, REML = TRUE,
              control = lmerControl(optimizer = "bobyqa",
                                    optCtrl = list(rhobeg = 2e-3, rhoend = 1e-12)))
  vc <- as.data.frame(VarCorr(fit))
  effects <- list()
  for (r in c("6m", "12m")) {
    L <- setNames(rep(0, length(fixef(fit))), names(fixef(fit)))
    L[c("armintervention", paste0("armintervention:review", r))] <- 1
    ct <- contest(fit, matrix(L, nrow = 1), joint = FALSE, ddf = "Kenward-Roger")
    effects[[paste0("arm effect at ", r)]] <- list(
      estimate = ct$Estimate, se = ct$`Std. Error`, df = ct$df, pvalue = ct$`Pr(>|t|)`)
  }
  ref_lmm[[v]] <- list(
    formula = sprintf("%s ~ arm * review + stratum + (1 | team_id)", v),
    nobs = nobs(fit), n_clusters = length(unique(long$team_id[!is.na(long[[v]])])),
    icc = vc$vcov[1] / sum(vc$vcov), effects = effects
  )
}

result <- list(
  generated_by = "tests/reference/ols.R",
  r_version = R.version.string,
  clubSandwich_version = as.character(packageVersion("clubSandwich")),
  datasets = list(mortality = ref_mortality, unequal = ref_unequal,
                  admissions = ref_admissions),
  ancova = ref_ancova,
  fidelity_lmm = ref_lmm
)
write_json(result, file.path(out_dir, "ols.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
