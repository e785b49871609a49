# Reference values for CRTResult.wald_test, resid, fitted_values and predict.
#
# Run from the project root:  Rscript tests/reference/wald.R
# Writes tests/reference/wald.json. Packages: lme4, lmerTest, pbkrtest, clubSandwich,
# jsonlite. Data: the committed reference data sets under tests/reference/data/.
#
# For each multi-row hypothesis L beta = rhs it records:
#   lmm  pbkrtest::KRmodcomp(fit, L, betaH) (scaled F, unscaled F, ndf, ddf, F.scaling,
#        p) and lmerTest::contestMD(fit, L, rhs, ddf = "Satterthwaite") (F, NumDF,
#        DenDF, p); the arm x review interaction also through anova(fit, ddf = ...).
#   ols  clubSandwich::Wald_test(fit, L, vcov = "CR2", test = c("HTZ", "chi-sq",
#        "Naive-F")), a non-zero rhs through a shifted response (see ols_hypothesis).
# and, on one lmm and one ols fit, fitted(), residuals() and predict() on new data
# (fixed part, re.form = NA, and with the cluster effects, unknown clusters at 0).
# lme4 is run to tight optimiser tolerances so the reference sits at the optimum.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(clubSandwich)
  library(jsonlite)
})

data_dir <- file.path("tests", "reference", "data")
out_path <- file.path("tests", "reference", "wald.json")

tight <- lmerControl(
  optimizer = "nloptwrap",
  optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-16, xtol_rel = 1e-14,
                 ftol_rel = 1e-16, maxeval = 100000),
  calc.derivs = FALSE,
  check.conv.singular = "ignore"
)

# rows of L pick coefficients by name; weights default to 1
rows_for <- function(names, rows) {
  L <- matrix(0, nrow = length(rows), ncol = length(names))
  for (i in seq_along(rows)) {
    r <- rows[[i]]
    for (term in names(r)) L[i, match(term, names)] <- r[[term]]
  }
  stopifnot(!anyNA(L))
  L
}

lmm_hypothesis <- function(fit, L, rhs) {
  betaH <- if (all(rhs == 0)) 0 else drop(MASS::ginv(L) %*% rhs)
  kr <- pbkrtest::KRmodcomp(fit, L, betaH = betaH)
  sat <- lmerTest::contestMD(fit, L, rhs = rhs, ddf = "Satterthwaite")
  list(
    L = L, rhs = rhs,
    kr = list(F = kr$test["Ftest", "stat"], F_unscaled = kr$test["FtestU", "stat"],
              num_df = kr$test["Ftest", "ndf"], den_df = kr$test["Ftest", "ddf"],
              scaling = kr$test["Ftest", "F.scaling"], p = kr$test["Ftest", "p.value"]),
    satterthwaite = list(F = sat[["F value"]], num_df = sat[["NumDF"]],
                         den_df = sat[["DenDF"]], p = sat[["Pr(>F)"]])
  )
}

ols_hypothesis <- function(fit, L, rhs, cluster) {
  # clubSandwich 0.5.8 has no null_constant: L beta = rhs is tested as L beta' = 0 on
  # the fit of y - X ginv(L) rhs, whose coefficients are beta - ginv(L) rhs and whose
  # residuals (so the CR2 covariance and HTZ df) are those of the original fit
  X <- model.matrix(fit)
  shifted <- model.frame(fit)
  shifted[[1]] <- shifted[[1]] - drop(X %*% MASS::ginv(L) %*% rhs)
  fit0 <- lm(formula(fit), data = shifted)
  w <- Wald_test(fit0, constraints = L, vcov = "CR2", cluster = cluster,
                 test = c("HTZ", "chi-sq", "Naive-F"))
  row <- function(t) {
    r <- w[w$test == t, ]
    list(F = r$Fstat, num_df = r$df_num, den_df = r$df_denom, p = r$p_val)
  }
  list(L = L, rhs = rhs, htz = row("HTZ"), chisq = row("chi-sq"), naive_f = row("Naive-F"))
}

# ---- lmm 1: the example trial's fidelity totals ------------------------------------
fid <- read.csv(file.path(data_dir, "lmm_fidelity.csv"))
fid$review <- factor(fid$review, levels = c("baseline", "6m", "12m"))
fid$arm <- factor(fid$arm, levels = c("control", "intervention"))
fid_fit <- lmerTest::lmer(total ~ arm * review + stratum + (1 | team_id), data = fid,
                          REML = TRUE, control = tight)
nm <- names(fixef(fid_fit))
fid_h <- list(
  interaction = list(rows = list(c("armintervention:review6m" = 1),
                                 c("armintervention:review12m" = 1)), rhs = c(0, 0)),
  review = list(rows = list(c("review6m" = 1), c("review12m" = 1)), rhs = c(0, 0)),
  arm_at_6m_12m = list(rows = list(c("armintervention" = 1, "armintervention:review6m" = 1),
                                   c("armintervention" = 1, "armintervention:review12m" = 1)),
                       rhs = c(2, 5)),
  stratum = list(rows = lapply(grep("^stratum", nm, value = TRUE),
                               function(t) setNames(1, t)), rhs = rep(0, 7))
)
fid_ref <- lapply(fid_h, function(h) lmm_hypothesis(fid_fit, rows_for(nm, h$rows), h$rhs))
an_sat <- anova(fid_fit, ddf = "Satterthwaite")
an_kr <- anova(fid_fit, ddf = "Kenward-Roger")
fid_anova <- list(
  satterthwaite = list(F = an_sat["arm:review", "F value"], num_df = an_sat["arm:review", "NumDF"],
                       den_df = an_sat["arm:review", "DenDF"], p = an_sat["arm:review", "Pr(>F)"]),
  kr = list(F = an_kr["arm:review", "F value"], num_df = an_kr["arm:review", "NumDF"],
            den_df = an_kr["arm:review", "DenDF"], p = an_kr["arm:review", "Pr(>F)"])
)
used <- as.integer(rownames(model.frame(fid_fit)))  # 1-based rows of fid in the fit
newdata <- data.frame(
  team_id = c("T01", "T05", "T99", "T12"),
  arm = factor(c("intervention", "control", "intervention", "control"),
               levels = c("control", "intervention")),
  review = factor(c("12m", "baseline", "6m", "6m"), levels = c("baseline", "6m", "12m")),
  stratum = c("Trust A", "Trust B", "Trust C", "Trust H")
)
fid_predict <- list(
  used_rows = used - 1L,
  fitted = unname(fitted(fid_fit)),
  resid = unname(residuals(fid_fit)),
  newdata = newdata,
  fixed = unname(predict(fid_fit, newdata = newdata, re.form = NA)),
  conditional = unname(predict(fid_fit, newdata = newdata, allow.new.levels = TRUE))
)

# ---- lmm 2: unequal cluster sizes in the hundreds ----------------------------------
une <- read.csv(file.path(data_dir, "lmm_unequal.csv"))
une_fit <- lmerTest::lmer(y ~ arm * x + female + (1 | cluster), data = une, REML = TRUE,
                          control = tight)
nm2 <- names(fixef(une_fit))
une_h <- list(
  arm_terms = list(rows = list(c("arm" = 1), c("arm:x" = 1)), rhs = c(0, 0)),
  covariates = list(rows = list(c("x" = 1), c("female" = 1), c("arm:x" = 1)),
                    rhs = c(2, -0.5, 0))
)
une_ref <- lapply(une_h, function(h) lmm_hypothesis(une_fit, rows_for(nm2, h$rows), h$rhs))

# ---- lmm 3: the same model by maximum likelihood (Satterthwaite only) --------------
une_ml <- lmerTest::lmer(y ~ arm * x + female + (1 | cluster), data = une, REML = FALSE,
                         control = tight)
une_ml_ref <- lapply(une_h, function(h) {
  L <- rows_for(nm2, h$rows)
  sat <- lmerTest::contestMD(une_ml, L, rhs = h$rhs, ddf = "Satterthwaite")
  list(L = L, rhs = h$rhs,
       satterthwaite = list(F = sat[["F value"]], num_df = sat[["NumDF"]],
                            den_df = sat[["DenDF"]], p = sat[["Pr(>F)"]]))
})

# ---- lmm 4: a fit on the boundary (cluster variance zero) --------------------------
bnd <- read.csv(file.path(data_dir, "lmm_boundary.csv"))
bnd_fit <- lmerTest::lmer(y ~ arm + x + (1 | cluster), data = bnd, REML = TRUE,
                          control = tight)
nm5 <- names(fixef(bnd_fit))
bnd_h <- list(both = list(rows = list(c("arm" = 1), c("x" = 1)), rhs = c(0, 0.5)))
bnd_ref <- lapply(bnd_h, function(h) lmm_hypothesis(bnd_fit, rows_for(nm5, h$rows), h$rhs))

# ---- ols 1: team-level ANCOVA of the 12-month fidelity total -----------------------
anc <- read.csv(file.path(data_dir, "ols_fidelity_ancova.csv"))
anc$arm <- factor(anc$arm, levels = c("control", "intervention"))
anc <- anc[complete.cases(anc[, c("total_baseline", "total_12m")]), ]
anc_fit <- lm(total_12m ~ arm + total_baseline + stratum, data = anc)
nm3 <- names(coef(anc_fit))
anc_h <- list(
  stratum = list(rows = lapply(grep("^stratum", nm3, value = TRUE),
                               function(t) setNames(1, t)), rhs = rep(0, 7)),
  arm_baseline = list(rows = list(c("armintervention" = 1), c("total_baseline" = 1)),
                      rhs = c(10, 1))
)
anc_ref <- lapply(anc_h, function(h) ols_hypothesis(anc_fit, rows_for(nm3, h$rows), h$rhs,
                                                    anc$team_id))
anc_new <- data.frame(arm = factor(c("intervention", "control"),
                                   levels = c("control", "intervention")),
                      total_baseline = c(120, 131.5), stratum = c("Trust D", "Trust A"))
anc_predict <- list(
  used_rows = as.integer(rownames(model.frame(anc_fit))) - 1L,
  fitted = unname(fitted(anc_fit)), resid = unname(residuals(anc_fit)),
  newdata = anc_new, fixed = unname(predict(anc_fit, newdata = anc_new))
)

# ---- ols 2: unequal clusters (12 clusters of 35 to 420 rows) -----------------------
oun <- read.csv(file.path(data_dir, "ols_unequal.csv"))
oun$arm <- factor(oun$arm, levels = c("control", "treated"))
oun_fit <- lm(y ~ arm + x + z, data = oun)
nm4 <- names(coef(oun_fit))
oun_h <- list(
  covariates = list(rows = list(c("x" = 1), c("z" = 1)), rhs = c(0, 0)),
  all = list(rows = list(c("armtreated" = 1), c("x" = 1), c("z" = 1)),
             rhs = c(0, 0.2, 0))
)
oun_ref <- lapply(oun_h, function(h) ols_hypothesis(oun_fit, rows_for(nm4, h$rows), h$rhs,
                                                    oun$cluster))

write_json(
  list(
    lmm = list(
      fidelity = list(formula = "total ~ arm * review + stratum", cluster = "team_id",
                      csv = "lmm_fidelity.csv", names = nm, hypotheses = fid_ref,
                      anova = fid_anova, predict = fid_predict),
      unequal = list(formula = "y ~ arm * x + female", cluster = "cluster",
                     csv = "lmm_unequal.csv", names = nm2, hypotheses = une_ref),
      boundary = list(formula = "y ~ arm + x", cluster = "cluster", singular = isSingular(bnd_fit),
                      csv = "lmm_boundary.csv", names = nm5, hypotheses = bnd_ref)
    ),
    lmm_ml = list(
      unequal = list(formula = "y ~ arm * x + female", cluster = "cluster",
                     csv = "lmm_unequal.csv", names = nm2, hypotheses = une_ml_ref)
    ),
    ols = list(
      ancova = list(formula = "total_12m ~ arm + total_baseline + stratum",
                    cluster = "team_id", csv = "ols_fidelity_ancova.csv", names = nm3,
                    hypotheses = anc_ref, predict = anc_predict),
      unequal = list(formula = "y ~ arm + x + z", cluster = "cluster",
                     csv = "ols_unequal.csv", names = nm4, hypotheses = oun_ref)
    )
  ),
  out_path, digits = NA, auto_unbox = TRUE, pretty = TRUE, matrix = "rowmajor"
)
message("wrote ", out_path)
