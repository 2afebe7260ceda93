# forkline-probe: fib's speedup and efficiency. Run from this folder: gnuplot fib.gp
set datafile missing '?'
set xlabel 'workers'
set grid
set key top left
set samples 400
set xrange [0.8:2.3]
set xtics (1, 2)
s = 0.00199628173
amdahl(n) = 1 / (s + (1 - s) / n)
if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
    set terminal pngcairo size 1200,480 noenhanced
} else {
    set terminal png size 1200,480 noenhanced
}
set output 'fib.png'
set multiplot layout 1,2 title 'fib: scales' noenhanced
set title 'speedup'
set ylabel 'speedup (1-worker median / median)'
set yrange [0:*]
set key top left
plot x title 'ideal (= workers)' with lines dashtype 2 lc rgb '#999999', \
     'fib.dat' using 1:5:6:7 title 'measured (median, min-max)' with yerrorlines lw 2 pt 7 lc rgb '#1f77b4', \
     amdahl(x) title sprintf('Amdahl, s = %.3g', s) lw 2 lc rgb '#d62728'
set title 'efficiency'
set ylabel 'speedup / workers'
set yrange [0:*]
set key bottom left
plot 1 title 'ideal' with lines dashtype 2 lc rgb '#999999', \
     'fib.dat' using 1:8 title 'measured' with linespoints lw 2 pt 7 lc rgb '#1f77b4', \
     amdahl(x) / x title 'Amdahl' lw 2 lc rgb '#d62728'
unset multiplot
set terminal svg size 1200,480 dynamic background rgb 'white' noenhanced
set output 'fib.svg'
set multiplot layout 1,2 title 'fib: scales' noenhanced
set title 'speedup'
set ylabel 'speedup (1-worker median / median)'
set yrange [0:*]
set key top left
plot x title 'ideal (= workers)' with lines dashtype 2 lc rgb '#999999', \
     'fib.dat' using 1:5:6:7 title 'measured (median, min-max)' with yerrorlines lw 2 pt 7 lc rgb '#1f77b4', \
     amdahl(x) title sprintf('Amdahl, s = %.3g', s) lw 2 lc rgb '#d62728'
set title 'efficiency'
set ylabel 'speedup / workers'
set yrange [0:*]
set key bottom left
plot 1 title 'ideal' with lines dashtype 2 lc rgb '#999999', \
     'fib.dat' using 1:8 title 'measured' with linespoints lw 2 pt 7 lc rgb '#1f77b4', \
     amdahl(x) / x title 'Amdahl' lw 2 lc rgb '#d62728'
unset multiplot
unset output
